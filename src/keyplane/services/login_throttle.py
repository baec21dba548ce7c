"""Throttling of dashboard sign-ins: after `max_failures` wrong passwords for one email within
the window, that email is locked out for a while, on every instance (the counts live in the
database). Counted per email whether or not an account exists, so the lockout reveals nothing
about which emails have accounts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import LoginThrottle
from keyplane.adapters.sql.repositories import aware, utcnow
from keyplane.domain.errors import LoginLocked


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


def _key(email: str) -> str:
    return email.strip().lower()[:320]


def wait_phrase(seconds: int) -> str:
    """'45 seconds', '1 minute', '15 minutes': how long a person has to wait."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _locked(until: datetime, now: datetime) -> LoginLocked:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    return LoginLocked(
        f"Too many failed sign-ins for this email. Try again in {wait_phrase(seconds)}.",
        retry_after=seconds,
    )


async def check(db: AsyncSession, email: str) -> None:
    """Refuse at once (without checking the password) while the email is locked out."""
    row = await db.get(LoginThrottle, _key(email))
    now = utcnow()
    until = aware(row.locked_until) if row is not None else None
    if until is not None and until > now:
        raise _locked(until, now)


async def record_failure(db: AsyncSession, email: str, policy: LoginPolicy) -> LoginLocked | None:
    """Count a wrong password; returns the lockout error when this failure starts one, so the
    caller can say so right away."""
    now = utcnow()
    row = await db.scalar(
        select(LoginThrottle).where(LoginThrottle.email == _key(email)).with_for_update()
    )
    if row is None:
        row = LoginThrottle(email=_key(email), failures=0, window_started_at=now)
        db.add(row)
    started = aware(row.window_started_at) or now
    if now - started > policy.window:  # a fresh window: old failures no longer count
        row.failures = 0
        row.window_started_at = now
        row.locked_until = None
    row.failures += 1
    if row.failures >= policy.max_failures:
        row.locked_until = now + policy.lockout
        row.failures = 0
        row.window_started_at = now
        return _locked(row.locked_until, now)
    return None


def attempts_left(failures_so_far: int, policy: LoginPolicy) -> int:
    return max(0, policy.max_failures - failures_so_far)


async def failures(db: AsyncSession, email: str) -> int:
    row = await db.get(LoginThrottle, _key(email))
    return 0 if row is None else row.failures


async def clear(db: AsyncSession, email: str) -> None:
    await db.execute(delete(LoginThrottle).where(LoginThrottle.email == _key(email)))
