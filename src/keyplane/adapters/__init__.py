"""Storage and infrastructure: sql/ (system of record), memory/ (in-process caches)."""
