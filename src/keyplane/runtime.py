"""The composition root: one Runtime per process wires settings, storage, caches and services.
The API, the CLI and the tests all build it the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keyplane.adapters.memory.ratelimit import MemoryRateLimiter
from keyplane.adapters.redis.ratelimit import RedisRateLimiter
from keyplane.adapters.sql import repositories
from keyplane.adapters.sql.database import create_engine, session_factory
from keyplane.adapters.sql.migrate import upgrade
from keyplane.domain.keys import VerifiedKey
from keyplane.domain.permissions import Permission
from keyplane.services import anomalies as anomalies_service
from keyplane.services import housekeeping as housekeeping_service
from keyplane.services import lifecycle
from keyplane.services.anomalies import AnomalyDetector, load_geoip
from keyplane.services.auth import Verifier
from keyplane.services.auth_failures import AuthFailureMonitor
from keyplane.services.browser_guard import BrowserGuard
from keyplane.services.changes import ChangeFeed
from keyplane.services.crypto import Keyring, load_keyring
from keyplane.services.github_keys import GithubKeys
from keyplane.services.housekeeping import Retention
from keyplane.services.jobs import BackgroundJobs
from keyplane.services.keys import KeyManager
from keyplane.services.ratelimit import RateLimiter
from keyplane.services.schedule import DeploymentJob
from keyplane.services.sso import OidcClient
from keyplane.services.usage import UsageBuffer
from keyplane.services.webhook_sender import WebhookSender
from keyplane.services.webhooks import Destinations
from keyplane.settings import FailureMode, Settings

FIRST_TURN_SECONDS = 60.0


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keyring: Keyring
    verifier: Verifier
    keys: KeyManager
    changes: ChangeFeed
    limiter: RateLimiter
    usage: UsageBuffer
    jobs: BackgroundJobs
    webhooks: WebhookSender
    github_keys: GithubKeys
    anomalies: AnomalyDetector
    browser_guard: BrowserGuard
    retention: Retention
    # Jobs run once per interval across the deployment (services.schedule), by name.
    scheduled: dict[str, DeploymentJob]
    # OpenID Connect sign-in (issue 12); caches providers' discovery documents and keys.
    oidc: OidcClient = field(default_factory=OidcClient)

    @classmethod
    async def start(
        cls, settings: Settings, *, migrate: bool = True, background: bool = True
    ) -> Runtime:
        engine = create_engine(
            settings.database_url,
            # Enough pooled connections that a busy process reuses them instead of opening
            # and closing overflow connections under load.
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_pool_size,
        )
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

        async def load_custom(org_id: int) -> frozenset[str]:
            async with sessions() as db:
                return await repositories.custom_names_in_org(db, org_id)

        limiter: RateLimiter
        if settings.redis_url:
            limiter = RedisRateLimiter.from_url(
                settings.redis_url, fail_open=settings.rate_limit_failure == FailureMode.OPEN
            )
        else:
            limiter = MemoryRateLimiter()
        verifier = Verifier(
            keyring=keyring,
            load_key=load_key,
            load_access=load_access,
            load_custom=load_custom,
            limiter=limiter,
            accept_test_keys=settings.accept_test_keys,
            cache_size=settings.key_cache_size,
            auth_failures_per_minute=settings.auth_failures_per_minute,
            failures=AuthFailureMonitor(
                settings.auth_failure_burst_threshold, settings.auth_failure_burst_window_seconds
            ),
        )
        usage = UsageBuffer()
        changes = ChangeFeed(
            sessions,
            verifier,
            poll_seconds=settings.change_poll_seconds,
            flush_seconds=settings.last_used_flush_seconds,
            usage=usage,
        )
        anomalies = AnomalyDetector(sessions, geoip=load_geoip(settings.geoip_csv))
        retention = Retention.from_settings(settings)
        runtime = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            keyring=keyring,
            verifier=verifier,
            keys=KeyManager(keyring, settings.max_keys_per_project),
            changes=changes,
            limiter=limiter,
            usage=usage,
            jobs=BackgroundJobs(),
            webhooks=WebhookSender(
                sessions,
                keyring,
                poll_seconds=settings.webhook_poll_seconds,
                retry_base_seconds=settings.webhook_retry_base_seconds,
                max_attempts=settings.webhook_max_attempts,
                timeout_seconds=settings.webhook_timeout_seconds,
                retry_max_delay_seconds=settings.webhook_retry_max_delay_seconds,
                retry_window_seconds=settings.webhook_retry_window_seconds,
                destinations=Destinations(allow_private=settings.webhook_allow_private),
            ),
            github_keys=GithubKeys(settings.github_scanning_keys_file),
            anomalies=anomalies,
            browser_guard=BrowserGuard(sessions),
            retention=retention,
            scheduled={
                job.name: job for job in _deployment_jobs(settings, sessions, anomalies, retention)
            },
        )
        if background:
            await changes.start()
            await runtime.webhooks.start()
            for job in runtime.scheduled.values():
                await job.start()
        return runtime

    async def close(self) -> None:
        await self.jobs.close()
        for job in self.scheduled.values():
            await job.stop()
        await self.webhooks.stop()
        await self.changes.stop()
        await self.limiter.close()
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
            await self._announce(
                db.info.pop(repositories.CHANGED_KEYS, {}),
                db.info.pop(repositories.CHANGED_ORGS, {}),
            )

    async def _announce(self, keys: dict[str, tuple[int, int]], orgs: dict[int, int]) -> None:
        """After a commit: drop this process's stale copies at once, and publish the new
        versions so that every other instance drops theirs on its next request."""
        by_org: dict[int, dict[str, int]] = {}
        for key_id, (org_id, version) in keys.items():
            self.verifier.invalidate_key(key_id)
            by_org.setdefault(org_id, {})[key_id] = version
        for org_id in orgs:
            self.verifier.invalidate_org(org_id)
        for org_id in by_org.keys() | orgs.keys():
            await self.limiter.publish(org_id, by_org.get(org_id, {}), orgs.get(org_id))


def _deployment_jobs(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    anomalies: AnomalyDetector,
    retention: Retention,
) -> list[DeploymentJob]:
    # Reminders and housekeeping also tick soon after start (not an interval later), so that
    # a deployment restarted more often than the interval still runs them; the turn is
    # claimed, so a restart does not repeat a recent run. Not at once: a process starting is
    # busy enough.
    reminders = DeploymentJob(
        sessions,
        lifecycle.JOB,
        lifecycle.REMINDER_SECONDS,
        lambda: lifecycle.remind(sessions),
        first_delay=FIRST_TURN_SECONDS,
    )
    housekeeping = DeploymentJob(
        sessions,
        housekeeping_service.JOB,
        settings.housekeeping_interval_seconds,
        # A long first sweep stops between two batches when the process stops.
        lambda: housekeeping_service.sweep(
            sessions, retention, stopping=lambda: housekeeping.stopping
        ),
        first_delay=min(FIRST_TURN_SECONDS, settings.housekeeping_interval_seconds),
    )
    detection = DeploymentJob(
        sessions, anomalies_service.JOB, settings.anomaly_interval_seconds, anomalies.run_once
    )
    return [detection, reminders, housekeeping]
