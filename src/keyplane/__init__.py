"""keyplane: a self-hostable API-key control plane for multi-project AI-agent platforms."""

__version__ = "0.1.0"
