"""Engine and session factory; SQLite gets WAL and a busy timeout so that the CLI and a running
server can write the same file."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

from keyplane.settings import async_url


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    url = async_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def dialect_insert(db: AsyncSession) -> Any:
    """The dialect's INSERT construct, for ON CONFLICT (upserts, insert-if-absent): the
    generic one has no such clause, and both supported databases speak it alike."""
    return postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# What a database that is restarting, unreachable or overloaded raises. asyncpg's refused
# connections surface as plain OSErrors (ConnectionError) and its timeouts as TimeoutError,
# which SQLAlchemy does not wrap.
_UNAVAILABLE = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


def is_unavailable(error: BaseException) -> bool:
    """True when `error` means "the database can't be reached now", not "this query is wrong"."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, _UNAVAILABLE)
