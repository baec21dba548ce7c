"""Dashboard sign-in sessions: an opaque cookie token (only its hash is stored) and a CSRF
token for every state-changing request."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import Session, User
from keyplane.adapters.sql.repositories import aware, utcnow
from keyplane.domain.errors import InvalidCredentials, PasswordLoginDisabled, ValidationFailed
from keyplane.services import login_throttle, sso
from keyplane.services.login_throttle import Guard, LoginPolicy
from keyplane.services.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password

SESSION_LIFETIME = timedelta(hours=12)


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class SignedIn:
    user_id: int
    csrf_token: str
    password_verified_at: datetime


async def login(db: AsyncSession, email: str, password: str) -> tuple[str, SignedIn]:
    user = await db.scalar(select(User).where(User.email == email.strip().lower()))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise InvalidCredentials("Wrong email or password.")
    # Only after the password checked out, so that this says nothing about unknown accounts.
    sso_org = await sso.password_refused_by(db, user.id)
    if sso_org is not None:
        raise PasswordLoginDisabled(
            f"{sso_org} signs in with SSO only; use its 'Sign in with SSO' button instead of "
            "a password."
        )
    return start(db, user.id, password_verified=True)


def start(db: AsyncSession, user_id: int, *, password_verified: bool) -> tuple[str, SignedIn]:
    """A new session for a person who proved who they are (password or SSO). After an SSO
    sign-in nothing counts as a recent password: revealing a secret asks for one."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    verified = now if password_verified else now - SESSION_LIFETIME
    row = Session(
        token_hash=_hash(token),
        user_id=user_id,
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
        password_verified_at=verified,
    )
    db.add(row)
    return token, SignedIn(user_id, row.csrf_token, verified)


Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True)
class Started:
    """A sign-in's cookies: the session, and the device cookie that makes this browser a
    trusted device for the email (services.login_throttle)."""

    token: str
    signed_in: SignedIn
    device: str


async def sign_in(
    transaction: Transaction,
    email: str,
    password: str,
    guard: Guard,
) -> Started:
    """`login` behind the throttle: a locked-out subject (this browser's device, else the
    email) is refused before its password is checked, and each wrong password is counted in
    its own transaction (the failed sign-in itself rolls back)."""
    subject = guard.subject(email)
    async with transaction() as db:
        await login_throttle.check(db, subject)
    try:
        async with transaction() as db:
            token, signed_in = await login(db, email, password)
            await login_throttle.clear(db, subject)
    except InvalidCredentials:
        async with transaction() as db:
            locked = await login_throttle.record_failure(db, subject, guard.policy)
            count = await login_throttle.failures(db, subject)
        if locked is not None:
            raise locked from None
        left = login_throttle.attempts_left(count, guard.policy)
        lockout = login_throttle.wait_phrase(int(guard.policy.lockout.total_seconds()))
        raise InvalidCredentials(
            f"Wrong email or password. {left} more attempt{'s' if left != 1 else ''} before "
            f"sign-in is locked for {lockout}.",
            attempts_left=left,
        ) from None
    return Started(token, signed_in, guard.devices.issue(email))


async def resolve(db: AsyncSession, token: str) -> SignedIn | None:
    row = await db.get(Session, _hash(token))
    if row is None or (aware(row.expires_at) or utcnow()) <= utcnow():
        return None
    verified = aware(row.password_verified_at)
    assert verified is not None
    return SignedIn(row.user_id, row.csrf_token, verified)


async def reauthenticate(db: AsyncSession, token: str, password: str) -> SignedIn:
    """Confirm the password again (before revealing a secret)."""
    row = await db.get(Session, _hash(token))
    user = None if row is None else await db.get(User, row.user_id)
    if user is not None and not user.password_hash:
        raise InvalidCredentials(
            "Your account signs in through SSO and has no password, so secrets cannot be "
            "revealed again; create a new key (or rotate this one) instead."
        )
    if row is None or user is None or not verify_password(user.password_hash, password):
        raise InvalidCredentials("Wrong password.")
    row.password_verified_at = utcnow()
    return SignedIn(row.user_id, row.csrf_token, row.password_verified_at)


async def confirm_password(
    transaction: Transaction,
    token: str,
    password: str,
    guard: Guard,
) -> SignedIn:
    """`reauthenticate` behind the sign-in throttle: wrong passwords typed to reveal a secret
    count like wrong sign-ins (against the same subject), so a borrowed session cannot be used
    to guess the password."""
    async with transaction() as db:
        row = await db.get(Session, _hash(token))
        user = None if row is None else await db.get(User, row.user_id)
        subject = guard.subject(user.email) if user is not None else ""
        if subject:
            await login_throttle.check(db, subject)
    try:
        async with transaction() as db:
            return await reauthenticate(db, token, password)
    except InvalidCredentials:
        if subject:
            async with transaction() as db:
                locked = await login_throttle.record_failure(db, subject, guard.policy)
            if locked is not None:
                raise locked from None
        raise


async def logout(db: AsyncSession, token: str) -> None:
    await db.execute(delete(Session).where(Session.token_hash == _hash(token)))


async def change_password(db: AsyncSession, token: str, current: str, new: str) -> SignedIn:
    """Set a new password after checking the current one; every other session of the user is
    signed out (a stolen session dies with the old password), this one stays."""
    row = await db.get(Session, _hash(token))
    user = None if row is None else await db.get(User, row.user_id)
    if row is None or user is None or not verify_password(user.password_hash, current):
        raise InvalidCredentials("Your current password is wrong.")
    if len(new) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"The new password needs at least {MIN_PASSWORD_LENGTH} characters.",
            details=[{"loc": ["new_password"], "msg": "too short"}],
        )
    if new == current:
        raise ValidationFailed(
            "The new password is the same as the current one; choose another.",
            details=[{"loc": ["new_password"], "msg": "unchanged"}],
        )
    user.password_hash = hash_password(new)
    await db.execute(
        delete(Session).where(Session.user_id == user.id, Session.token_hash != row.token_hash)
    )
    row.password_verified_at = utcnow()
    return SignedIn(row.user_id, row.csrf_token, row.password_verified_at)


def policy_from(max_failures: int, window_seconds: int, lockout_seconds: int) -> LoginPolicy:
    return LoginPolicy(
        max_failures=max_failures,
        window=timedelta(seconds=window_seconds),
        lockout=timedelta(seconds=lockout_seconds),
    )
