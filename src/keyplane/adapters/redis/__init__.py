"""Redis backends: the shared rate limiter that also carries change versions."""
