"""No secret is ever stored in plain text, or written to logs."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import select

from keyplane.adapters.sql.models import Base
from tests.conftest import World, bearer


async def test_the_database_never_contains_a_secret(
    client: httpx.AsyncClient,
    world: World,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [
        await world.project_key("conversation:generate"),
        await world.user_key("conversation:read", "api_key:write"),
        await world.project_key("project:read", test=True),
    ]
    for secret in secrets:  # use them, including failing requests that log
        await client.get(f"/v1/projects/{world.project_id}/conversations", headers=bearer(secret))
        await client.post(
            f"/v1/projects/{world.project_id}/conversations",
            headers=bearer(secret),
            json={"user_id": "u", "message": "hi"},
        )
    await world.runtime.changes.flush()

    dumped: list[str] = []
    async with world.runtime.sessions() as db:
        for table in Base.metadata.sorted_tables:
            for row in (await db.execute(select(table))).all():
                for value in row:
                    if isinstance(value, bytes):
                        dumped.append(value.hex())
                        dumped.append(value.decode("latin-1"))
                    else:
                        dumped.append(str(value))
    everything = "\n".join(dumped)
    out, err = capsys.readouterr()
    for secret in secrets:
        random_part = secret[8:-6]
        assert random_part not in everything
        assert secret.encode().hex() not in everything
        assert random_part not in caplog.text
        assert random_part not in out + err
