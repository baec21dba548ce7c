"""The pure core: key format, permissions, roles and errors. Imports no framework."""
