"""The composition root: one Runtime per process wires settings, storage, caches and services.
The API, the CLI and the tests all build it the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keyplane.adapters.sql import repositories
from keyplane.adapters.sql.database import create_engine, session_factory
from keyplane.adapters.sql.migrate import upgrade
from keyplane.domain.keys import VerifiedKey
from keyplane.domain.permissions import Permission
from keyplane.services.auth import Verifier
from keyplane.services.changes import ChangeFeed
from keyplane.services.crypto import Keyring, load_keyring
from keyplane.services.keys import KeyManager
from keyplane.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keyring: Keyring
    verifier: Verifier
    keys: KeyManager
    changes: ChangeFeed

    @classmethod
    async def start(
        cls, settings: Settings, *, migrate: bool = True, background: bool = True
    ) -> Runtime:
        engine = create_engine(settings.database_url)
        if migrate:
            await upgrade(engine)
        sessions = session_factory(engine)
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        keyring = load_keyring(secret, settings.data_dir)

        async def load_key(lookups: list[bytes]) -> VerifiedKey | None:
            async with sessions() as db:
                return await repositories.key_by_lookup(db, lookups)

        async def load_access(
            user_id: int, project_id: int
        ) -> tuple[int, frozenset[Permission]] | None:
            async with sessions() as db:
                return await repositories.project_access(db, user_id, project_id)

        verifier = Verifier(
            keyring=keyring,
            load_key=load_key,
            load_access=load_access,
            accept_test_keys=settings.accept_test_keys,
            cache_size=settings.key_cache_size,
        )
        changes = ChangeFeed(
            sessions,
            verifier,
            poll_seconds=settings.change_poll_seconds,
            flush_seconds=settings.last_used_flush_seconds,
        )
        runtime = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            keyring=keyring,
            verifier=verifier,
            keys=KeyManager(keyring, settings.max_keys_per_project),
            changes=changes,
        )
        if background:
            await changes.start()
        return runtime

    async def close(self) -> None:
        await self.changes.stop()
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits on success, rolls back on error, and only after the commit
        drops this process's cached copies of the keys it changed."""
        async with self.sessions() as db:
            try:
                yield db
                await db.commit()
            except BaseException:
                await db.rollback()
                raise
            for key_id in db.info.pop(repositories.INVALIDATED_KEYS, ()):
                self.verifier.invalidate_key(key_id)
            if db.info.pop(repositories.ACCESS_CHANGED, False):
                self.verifier.invalidate_access()
