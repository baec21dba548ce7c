"""In-process backends: used as-is by single-process installs, and as the first tier in front
of shared backends."""
