"""SQLAlchemy 2 async models, database setup, migrations and repositories."""
