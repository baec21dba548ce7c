"""The `keyplane` command line (Typer + Rich)."""
