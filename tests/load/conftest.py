"""The load test runs real `keyplane serve` processes on PostgreSQL + Redis, the deployment it
is about; it reuses the CLI tests' fixtures for the processes and the environment."""

from __future__ import annotations

import pytest

from tests.cli.conftest import _cheap_password_hashing, cli, cli_env, serve

__all__ = ["_cheap_password_hashing", "cli", "cli_env", "serve"]


@pytest.fixture
def database_url(postgres_database: str) -> str:
    return postgres_database
