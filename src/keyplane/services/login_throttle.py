"""Throttling of dashboard sign-ins: after `max_failures` wrong passwords within the window,
sign-in is locked for a while, on every instance (the counts live in the database).

What is counted (the subject) depends on the browser. An unknown browser counts against the
email, whether or not an account exists, so the lockout reveals nothing about which emails
have accounts. A browser where that person signed in before carries a device cookie
(OWASP's "device cookies"): it counts against that device alone. So whoever types wrong
passwords for somebody else's email locks out unknown browsers only, never the owner's own
browser; a device that guesses is locked out on its own, and without its cookie it is an
unknown browser again, counted against the email.

A device cookie is signed over the account's id and its current password hash: changing the
password (or deleting the account) ends every device's trust at once, so cookies collected
while somebody knew the password give no guesses at the next one.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import LoginThrottle, User
from keyplane.adapters.sql.repositories import aware, utcnow
from keyplane.domain.errors import LoginLocked
from keyplane.services.accounts import normalize_email
from keyplane.services.crypto import Keyring

DEVICE_LIFETIME = timedelta(days=365)
# A device's subject; an email's is the email itself (normalized), never starting with this.
DEVICE_PREFIX = "device:"


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class LoginGuard:
    """How a password typed in one browser is throttled: the policy, and the subject its
    failures count against (the browser's device, when its cookie is one for that account,
    else the email)."""

    policy: LoginPolicy
    devices: TrustedDevices
    device_cookie: str | None

    async def subject(self, db: AsyncSession, email: str) -> str:
        row = (
            await db.execute(
                select(User.id, User.password_hash).where(User.email == normalize_email(email))
            )
        ).first()
        user = None if row is None else (row[0], row[1] or "")
        return self.devices.subject(email, user, self.device_cookie)

    def subject_of(self, user: User) -> str:
        return self.devices.subject(
            user.email, (user.id, user.password_hash or ""), self.device_cookie
        )


class TrustedDevices:
    """Device cookies: `<nonce>.<signature>`, signed over the nonce, the account's id and its
    password hash. Nothing is stored: the signature (keyed by the server's secret) says that
    this browser signed in to this account, with its current password."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def issue(self, user: User) -> str:
        nonce = secrets.token_urlsafe(16)
        signed = self._signed(nonce, (user.id, user.password_hash or ""))
        return f"{nonce}.{self._keyring.sign_cookie(signed)}"

    def subject(self, email: str, user: tuple[int, str] | None, cookie: str | None) -> str:
        """What a sign-in as `email` (the account `user`: id and password hash, if it exists)
        from a browser with `cookie` counts against."""
        cookie = cookie or ""
        nonce, _, signature = cookie.partition(".")
        trusted = (
            user is not None
            and nonce
            and len(cookie) < 200  # ours are 66 characters; nothing bigger is worth a MAC
            and self._keyring.cookie_signed(self._signed(nonce, user), signature)
        )
        return DEVICE_PREFIX + nonce if trusted else normalize_email(email)[:320]

    @staticmethod
    def _signed(nonce: str, user: tuple[int, str]) -> str:
        return json.dumps(["device", nonce, *user])


def wait_phrase(seconds: int) -> str:
    """'45 seconds', '1 minute', '15 minutes': how long a person has to wait."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _locked(subject: str, until: datetime, now: datetime) -> LoginLocked:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    whose = "from this browser" if subject.startswith(DEVICE_PREFIX) else "for this email"
    return LoginLocked(
        f"Too many failed sign-ins {whose}. Try again in {wait_phrase(seconds)}.",
        retry_after=seconds,
    )


async def check(db: AsyncSession, subject: str) -> None:
    """Refuse at once (without checking the password) while the subject is locked out."""
    row = await db.get(LoginThrottle, subject)
    now = utcnow()
    until = aware(row.locked_until) if row is not None else None
    if until is not None and until > now:
        raise _locked(subject, until, now)


async def record_failure(db: AsyncSession, subject: str, policy: LoginPolicy) -> LoginLocked | None:
    """Count a wrong password; returns the lockout error when this failure starts one, so the
    caller can say so right away."""
    now = utcnow()
    row = await db.scalar(
        select(LoginThrottle).where(LoginThrottle.subject == subject).with_for_update()
    )
    if row is None:
        row = LoginThrottle(subject=subject, failures=0, window_started_at=now)
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
        return _locked(subject, row.locked_until, now)
    return None


def attempts_left(failures_so_far: int, policy: LoginPolicy) -> int:
    return max(0, policy.max_failures - failures_so_far)


async def failures(db: AsyncSession, subject: str) -> int:
    row = await db.get(LoginThrottle, subject)
    return 0 if row is None else row.failures


async def clear(db: AsyncSession, subject: str) -> None:
    await db.execute(delete(LoginThrottle).where(LoginThrottle.subject == subject))
