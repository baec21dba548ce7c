"""Dashboard sign-in sessions: an opaque cookie token (only its hash is stored) and a CSRF
token for every state-changing request."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import Session, User
from keyplane.adapters.sql.repositories import aware, utcnow
from keyplane.domain.errors import InvalidCredentials, PasswordLoginDisabled, ValidationFailed
from keyplane.services import accounts, login_throttle, sso
from keyplane.services.login_throttle import LoginGuard, LoginPolicy, TrustedDevices
from keyplane.services.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password

SESSION_LIFETIME = timedelta(hours=12)
T = TypeVar("T")


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class SignedIn:
    user_id: int
    csrf_token: str
    password_verified_at: datetime


async def login(db: AsyncSession, email: str, password: str) -> tuple[str, SignedIn]:
    user = await db.scalar(select(User).where(User.email == accounts.normalize_email(email)))
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


async def start_after_sso(db: AsyncSession, user_id: int, devices: TrustedDevices) -> Started:
    """A session after an SSO sign-in, and this browser as a trusted device: somebody
    locking out this email does not stop its password being asked here (before a secret is
    revealed), nor a password sign-in from here."""
    token, signed_in = start(db, user_id, password_verified=False)
    user = await db.get(User, user_id)
    assert user is not None
    return Started(token, signed_in, devices.issue(user))


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
    trusted device of the account (services.login_throttle)."""

    token: str
    signed_in: SignedIn
    device: str


async def sign_in(
    transaction: Transaction,
    email: str,
    password: str,
    guard: LoginGuard,
) -> Started:
    """`login` behind the throttle (`_throttled`); a wrong password says how many attempts
    are left before the lockout."""
    if "@" not in email:  # nothing to count: no account has such a name
        raise ValidationFailed("Enter the email address you sign in with.")

    counted_against = ""  # found once, by _throttled, and kept for the attempts-left count

    async def subject_of(db: AsyncSession) -> str:
        nonlocal counted_against
        counted_against = await guard.subject(db, email)
        return counted_against

    async def attempt(db: AsyncSession, subject: str) -> Started:
        token, signed_in = await login(db, email, password)
        await login_throttle.clear(db, subject)
        user = await db.get(User, signed_in.user_id)
        assert user is not None
        return Started(token, signed_in, guard.devices.issue(user))

    try:
        return await _throttled(transaction, guard, subject_of, attempt)
    except InvalidCredentials:
        async with transaction() as db:
            count = await login_throttle.failures(db, counted_against)
        left = login_throttle.attempts_left(count, guard.policy)
        lockout = login_throttle.wait_phrase(int(guard.policy.lockout.total_seconds()))
        raise InvalidCredentials(
            f"Wrong email or password. {left} more attempt{'s' if left != 1 else ''} before "
            f"sign-in is locked for {lockout}.",
            attempts_left=left,
        ) from None


async def _throttled(
    transaction: Transaction,
    guard: LoginGuard,
    subject_of: Callable[[AsyncSession], Awaitable[str | None]],
    attempt: Callable[[AsyncSession, str], Awaitable[T]],
) -> T:
    """A password check behind the sign-in throttle: a locked-out subject (this browser's
    device, else the email) is refused before the password is checked, and each wrong
    password is counted in its own transaction (the failed attempt itself rolls back). Every
    place a password is typed goes through here, so none of them is a way around it."""
    async with transaction() as db:
        subject = await subject_of(db)
        if subject is not None:
            await login_throttle.check(db, subject)
    try:
        async with transaction() as db:
            return await attempt(db, subject or "")
    except InvalidCredentials:
        if subject is not None:
            async with transaction() as db:
                locked = await login_throttle.record_failure(db, subject, guard.policy)
            if locked is not None:
                raise locked from None
        raise


async def _session_and_user(db: AsyncSession, token: str) -> tuple[Session | None, User | None]:
    row = await db.get(Session, _hash(token))
    return row, None if row is None else await db.get(User, row.user_id)


def _session_subject(
    guard: LoginGuard, token: str
) -> Callable[[AsyncSession], Awaitable[str | None]]:
    """For `_throttled`: a password typed in a signed-in session counts against its user's
    subject (nothing to count without a session)."""

    async def subject_of(db: AsyncSession) -> str | None:
        _row, user = await _session_and_user(db, token)
        return None if user is None else guard.subject_of(user)

    return subject_of


async def resolve(db: AsyncSession, token: str) -> SignedIn | None:
    row = await db.get(Session, _hash(token))
    if row is None or (aware(row.expires_at) or utcnow()) <= utcnow():
        return None
    verified = aware(row.password_verified_at)
    assert verified is not None
    return SignedIn(row.user_id, row.csrf_token, verified)


async def reauthenticate(db: AsyncSession, token: str, password: str) -> SignedIn:
    """Confirm the password again (before revealing a secret)."""
    row, user = await _session_and_user(db, token)
    if user is not None and not user.password_hash:
        # Not a wrong password (nothing to guess): refused, and not counted by the throttle.
        raise PasswordLoginDisabled(
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
    guard: LoginGuard,
) -> SignedIn:
    """`reauthenticate` behind the sign-in throttle: wrong passwords typed to reveal a secret
    count like wrong sign-ins (against the same subject), so a borrowed session cannot be used
    to guess the password."""

    async def attempt(db: AsyncSession, _subject: str) -> SignedIn:
        return await reauthenticate(db, token, password)

    return await _throttled(transaction, guard, _session_subject(guard, token), attempt)


async def logout(db: AsyncSession, token: str) -> None:
    await db.execute(delete(Session).where(Session.token_hash == _hash(token)))


async def change_password(
    transaction: Transaction, token: str, current: str, new: str, guard: LoginGuard
) -> str:
    """Set a new password after checking the current one (behind the sign-in throttle, like
    every password typed); every other session of the user is signed out (a stolen session
    dies with the old password), this one stays. Every device cookie of the account dies too
    (they are signed over the password hash): returns a fresh one for this browser."""

    async def attempt(db: AsyncSession, _subject: str) -> str:
        return guard.devices.issue(await _change_password(db, token, current, new))

    return await _throttled(transaction, guard, _session_subject(guard, token), attempt)


async def _change_password(db: AsyncSession, token: str, current: str, new: str) -> User:
    row, user = await _session_and_user(db, token)
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
    return user


def policy_from(max_failures: int, window_seconds: int, lockout_seconds: int) -> LoginPolicy:
    return LoginPolicy(
        max_failures=max_failures,
        window=timedelta(seconds=window_seconds),
        lockout=timedelta(seconds=lockout_seconds),
    )
