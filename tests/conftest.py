"""Shared fixtures. Every storage test runs on each backend in KEYPLANE_TEST_BACKENDS
(default: sqlite and postgres). A backend that is listed but unreachable fails the run: it is
never silently skipped."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement

from keyplane.adapters.sql.database import create_engine
from keyplane.adapters.sql.migrate import upgrade
from keyplane.adapters.sql.models import Base
from keyplane.api.app import create_app
from keyplane.runtime import Runtime
from keyplane.services import accounts
from keyplane.services.keys import Actor, KeySpec
from keyplane.settings import Settings


def _redis_url_for_this_worker(base: str) -> str:
    """Under pytest-xdist each worker empties and fills its own Redis database (base + worker
    number, wrapping at Redis's default 16), so parallel tests never flush each other's data.
    PostgreSQL needs nothing: `postgres_database` is per session, and each worker is one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return base
    parts = urlsplit(base)
    number = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(number + int(worker[2:])) % 16}"))


REDIS_URL = _redis_url_for_this_worker(
    os.environ.get("KEYPLANE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
)
POSTGRES_ADMIN = os.environ.get(
    "KEYPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = [b for b in os.environ.get("KEYPLANE_TEST_BACKENDS", "sqlite,postgres").split(",") if b]
TEST_SECRET = "1:test-secret-key-for-keyplane-tests-only"
PASSWORD = "correct horse battery"


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test copies it (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"

    async def build() -> None:
        engine = create_engine(f"sqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped afterwards."""
    name = f"keyplane_test_{uuid.uuid4().hex[:10]}"
    admin = _asyncpg_dsn(POSTGRES_ADMIN)

    async def create() -> str:
        try:
            connection = await asyncpg.connect(admin, timeout=10)
        except (OSError, asyncpg.PostgresError) as error:
            pytest.fail(
                f"PostgreSQL is required for the postgres backend but {admin} is unreachable "
                f"({error}). Start it, or set KEYPLANE_TEST_BACKENDS=sqlite for a quick run.",
                pytrace=False,
            )
        await connection.execute(f'CREATE DATABASE "{name}"')
        await connection.close()
        url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url = f"{url}/{name}"
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()
        return url

    async def drop() -> None:
        connection = await asyncpg.connect(admin, timeout=10)
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()

    url = asyncio.run(create())
    yield url
    asyncio.run(drop())


@pytest.fixture
def redis_url() -> str:
    """A reachable Redis, emptied for this test. Redis is required, never skipped."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as error:
        pytest.fail(
            f"Redis is required but {REDIS_URL} is unreachable ({error}); start it "
            "(see README) or point KEYPLANE_TEST_REDIS_URL at one.",
            pytrace=False,
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(params=["memory", "redis"])
def limiter_backend(request: pytest.FixtureRequest) -> str | None:
    """For limiter tests: None (in-process memory) or a Redis URL."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    return None


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "keyplane.db"
        shutil.copy(template, target)
        return f"sqlite:///{target}"
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_database")
        return url
    raise ValueError(f"unknown backend {request.param}")


async def _truncate(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        data_dir=tmp_path,
        change_poll_seconds=0.05,
        # Kept forever: tests write rows dated in the past, and the background sweep must not
        # race them (tests of housekeeping sweep explicitly).
        usage_retention_days=0,
        client_retention_days=0,
        webhook_delivery_retention_days=0,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    await _truncate(settings.database_url)
    rt = await Runtime.start(settings, migrate=False)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime), client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyplane.test") as c:
        yield c


@dataclass
class World:
    """An owner with an organization and a project, and helpers to issue keys."""

    runtime: Runtime
    org_id: int
    owner_id: int
    project_id: int
    email: str

    async def project_key(
        self, *permissions: str, project_id: int | None = None, test: bool = False, **kwargs: object
    ) -> str:
        from keyplane.domain.keyformat import Mode

        spec = KeySpec(
            name=str(kwargs.pop("name", "test key")),
            permissions=list(permissions),
            mode=Mode.TEST if test else Mode.LIVE,
            **kwargs,
        )  # type: ignore[arg-type]
        async with self.runtime.transaction() as db:
            issued = await self.runtime.keys.create_project_key(
                db, Actor.operator(), project_id or self.project_id, spec
            )
        return issued.secret

    async def user_key(
        self, *permissions: str, user_id: int | None = None, test: bool = False
    ) -> str:
        from keyplane.domain.keyformat import Mode

        spec = KeySpec(
            name="user key", permissions=list(permissions), mode=Mode.TEST if test else Mode.LIVE
        )
        async with self.runtime.transaction() as db:
            issued = await self.runtime.keys.create_user_key(
                db, Actor.operator(), user_id or self.owner_id, spec
            )
        return issued.secret

    async def project(self, name: str = "Second project") -> int:
        async with self.runtime.transaction() as db:
            project = await accounts.create_project(db, self.org_id, name)
        return project.id


@pytest.fixture
async def world(runtime: Runtime) -> World:
    email = "owner@example.com"
    async with runtime.transaction() as db:
        made = await accounts.bootstrap(db, email=email, password=PASSWORD)
    return World(runtime, made.org_id, made.user_id, made.project_id, email)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    """A loopback port nobody listens on now (for real servers started by tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def query_plan(db: AsyncSession, query: ClauseElement) -> list[str]:
    """The lines of the database's plan for `query`; on PostgreSQL with sequential scans
    discouraged, so that a test's tiny table still shows whether an index could serve it."""
    postgres = db.get_bind().dialect.name == "postgresql"
    dialect = postgresql.dialect() if postgres else sqlite.dialect()
    compiled = query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    if postgres:
        await db.execute(text("SET LOCAL enable_seqscan = off"))
        return [str(line) for line in (await db.execute(text(f"EXPLAIN {compiled}"))).scalars()]
    return [str(row[-1]) for row in await db.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
