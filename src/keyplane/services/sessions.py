"""Dashboard sign-in sessions: an opaque cookie token (only its hash is stored) and a CSRF
token for every state-changing request."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import Session, User
from keyplane.adapters.sql.repositories import aware, utcnow
from keyplane.domain.errors import InvalidCredentials
from keyplane.services.passwords import verify_password

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
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = Session(
        token_hash=_hash(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
        password_verified_at=now,
    )
    db.add(row)
    return token, SignedIn(user.id, row.csrf_token, now)


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
    if row is None or user is None or not verify_password(user.password_hash, password):
        raise InvalidCredentials("Wrong password.")
    row.password_verified_at = utcnow()
    return SignedIn(row.user_id, row.csrf_token, row.password_verified_at)


async def logout(db: AsyncSession, token: str) -> None:
    await db.execute(delete(Session).where(Session.token_hash == _hash(token)))
