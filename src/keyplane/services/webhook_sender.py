"""Sends the webhook outbox (issues 7 and 11). Every process may run a sender (each
`keyplane serve` worker does): due deliveries are selected with FOR UPDATE SKIP LOCKED on
PostgreSQL (concurrent senders take different rows instead of queueing) and each is claimed
with a conditional update on its attempt count (what makes it safe on SQLite too), so exactly
one process makes each attempt; a process that dies mid-send leaves the row to be retried
when its lease ends.

A failed attempt is retried with exponential backoff (doubling from
`webhook_retry_base_seconds`, capped at `webhook_retry_max_delay_seconds`) until
`webhook_retry_window_seconds` (a day) after the event; then the delivery is given up and
the subscription disabled with a notice (services/webhooks.disable_after_failures)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyplane import __version__
from keyplane.adapters.sql.models import WebhookDelivery, WebhookEndpoint
from keyplane.adapters.sql.repositories import aware, utcnow
from keyplane.domain.backoff import retry_delay
from keyplane.services.crypto import Keyring
from keyplane.services.periodic import Periodic
from keyplane.services.webhook_urls import destination_refusal
from keyplane.services.webhooks import Destinations, disable_after_failures, signing_secret
from keyplane.webhooks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign

log = structlog.get_logger(__name__)
BATCH = 50


@dataclass(frozen=True)
class Claimed:
    id: int
    attempts: int
    event: str
    body: str
    url: str
    secret: str
    endpoint_id: int = 0
    mode: str = "live"
    created_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keyring: Keyring,
        *,
        poll_seconds: float,
        retry_base_seconds: float,
        max_attempts: int,
        timeout_seconds: float,
        retry_max_delay_seconds: float = 3600.0,
        retry_window_seconds: float = 86400.0,
        destinations: Destinations | None = None,
    ) -> None:
        self._sessions = sessions
        self._max_delay = retry_max_delay_seconds
        self._window = timedelta(seconds=retry_window_seconds)
        # Checked before every attempt: a name may resolve elsewhere than when subscribed.
        self.destinations = destinations or Destinations()
        self._keyring = keyring
        self._poll_seconds = poll_seconds
        self._retry_base = retry_base_seconds
        self._max_attempts = max_attempts
        self._timeout = timeout_seconds
        # A claimed attempt that has not reported back after this long is retried elsewhere.
        self._lease = timedelta(seconds=timeout_seconds + 30)
        self._loop = Periodic(
            self.send_due,
            poll_seconds,
            name="keyplane-webhooks",
            failed_event="webhook_sender_failed",
            first_delay=0,
        )
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send_due(self) -> int:
        """Claim the due deliveries, send them concurrently and record each outcome; returns
        how many attempts were made."""
        claimed = await self._claim()
        if not claimed:
            return 0
        client = self._client or httpx.AsyncClient(timeout=self._timeout)
        try:
            outcomes = await asyncio.gather(*(self._send(client, c) for c in claimed))
        finally:
            if client is not self._client:
                await client.aclose()
        async with self._sessions() as db:
            for delivery, outcome in zip(claimed, outcomes, strict=True):
                await self._record(db, delivery, outcome)
            await db.commit()
        return len(claimed)

    async def _claim(self) -> list[Claimed]:
        now = utcnow()
        claimed: list[Claimed] = []
        async with self._sessions() as db:
            query = (
                select(WebhookDelivery.id, WebhookDelivery.attempts)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.status == "pending")
                .where(WebhookDelivery.next_attempt_at <= now)
                .where(WebhookEndpoint.disabled_at.is_(None))
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(BATCH)
            )
            if db.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
            due = (await db.execute(query)).all()
            for delivery_id, attempts in due:
                row = (
                    await db.execute(
                        update(WebhookDelivery)
                        .where(
                            WebhookDelivery.id == delivery_id,
                            WebhookDelivery.status == "pending",
                            WebhookDelivery.attempts == attempts,
                        )
                        .values(attempts=attempts + 1, next_attempt_at=now + self._lease)
                        .returning(
                            WebhookDelivery.event,
                            WebhookDelivery.body,
                            WebhookDelivery.endpoint_id,
                            WebhookDelivery.created_at,
                        )
                    )
                ).first()
                if row is None:  # another process claimed it first
                    continue
                event, body, endpoint_id, created_at = row
                endpoint = await db.get(WebhookEndpoint, endpoint_id)
                if endpoint is None:
                    continue
                secret = signing_secret(self._keyring, endpoint)
                claimed.append(
                    Claimed(
                        delivery_id,
                        attempts + 1,
                        event,
                        body,
                        endpoint.url,
                        secret,
                        endpoint.id,
                        endpoint.mode,
                        aware(created_at),
                    )
                )
            await db.commit()
        return claimed

    async def _send(self, client: httpx.AsyncClient, delivery: Claimed) -> Outcome:
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"keyplane-webhooks/{__version__}",
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: str(delivery.id),
            SIGNATURE_HEADER: sign(delivery.secret, body),
        }
        refused = await destination_refusal(
            delivery.url,
            allow_private=self.destinations.allows_private(delivery.mode),
            resolve=self.destinations.resolve,
        )
        if refused is not None:
            return Outcome(None, f"not sent: {refused} (live webhooks go to public addresses)")
        try:
            response = await client.post(delivery.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return Outcome(None, f"{type(error).__name__}: {error}"[:500])
        if 200 <= response.status_code < 300:
            return Outcome(response.status_code, None)
        return Outcome(response.status_code, f"HTTP {response.status_code}")

    async def _record(self, db: AsyncSession, delivery: Claimed, outcome: Outcome) -> None:
        now = utcnow()
        # A success keeps the previous error: the log shows that earlier attempts failed.
        values: dict[str, object] = {"last_status_code": outcome.status_code}
        if outcome.error is not None:
            values["last_error"] = outcome.error
        give_up = False
        if outcome.ok:
            values |= {"status": "delivered", "delivered_at": now}
        else:
            delay = retry_delay(
                delivery.attempts,
                self._retry_base,
                random.random(),  # noqa: S311 - jitter, not a secret
                self._max_delay,
            )
            started = delivery.created_at or now
            if delivery.attempts >= self._max_attempts or (
                now + timedelta(seconds=delay) > started + self._window
            ):
                values |= {"status": "failed"}
                give_up = True
                log.warning("webhook_gave_up", delivery_id=delivery.id, attempts=delivery.attempts)
            else:
                values |= {"next_attempt_at": now + timedelta(seconds=delay)}
        # Only if nobody re-claimed it meanwhile (our lease ran out): theirs is the newer word.
        changed = await db.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery.id,
                WebhookDelivery.attempts == delivery.attempts,
                WebhookDelivery.status == "pending",
            )
            .values(**values)
        )
        if outcome.ok and changed.rowcount == 1:  # type: ignore[attr-defined]
            await db.execute(
                update(WebhookEndpoint)
                .where(
                    WebhookEndpoint.id == delivery.endpoint_id,
                    or_(
                        WebhookEndpoint.last_delivered_at.is_(None),
                        WebhookEndpoint.last_delivered_at < now,
                    ),
                )
                .values(last_delivered_at=now)
            )
        if give_up and changed.rowcount == 1:  # type: ignore[attr-defined]
            await disable_after_failures(
                db,
                delivery.endpoint_id,
                f"{delivery.attempts} attempts to deliver {delivery.event} failed "
                f"(last: {outcome.error or 'no answer'})",
            )
