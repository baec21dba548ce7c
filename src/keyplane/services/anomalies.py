"""Anomaly detection over the hourly usage rollups and key clients (issue 7), run once per
interval across the deployment (services.schedule); the alerts table's dedup key makes each
alert exist once even if two processes judge the same hour.

Signals, each against the key's own history: request-volume spikes, permission-error (403)
bursts, off-hours activity, and requests from a new network (/16 or /48) or, with an
IP-to-country file configured, a new country. Failed-authentication bursts are detected on
the request path (services/auth_failures.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import structlog
from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyplane.adapters.sql.models import Alert, ApiKey, KeyClient, KeyUsageHourly
from keyplane.adapters.sql.repositories import aware, utcnow
from keyplane.domain.anomalies import Finding, Thresholds, network_of, off_hours, spike
from keyplane.domain.geoip import GeoTable
from keyplane.services.alerts import AlertSpec, raise_alert
from keyplane.services.usage import FORBIDDEN

log = structlog.get_logger(__name__)

HISTORY = timedelta(days=7)
JOB = "anomaly_detection"  # its name among the deployment's jobs (services.schedule)
NEW_CLIENT_LOOKBACK = timedelta(hours=2)
# Keys (or clients) judged per query: memory and query size stay bounded whatever the number
# of keys in use (an IN list of 500 is far below any bind-parameter limit).
BATCH = 500


@dataclass
class Seen:
    """A key's earlier clients, reduced: the first time any was seen, and the first time
    each network and (with a country file) each country was."""

    first: datetime | None = None
    networks: dict[str, datetime] = field(default_factory=dict)
    countries: dict[str, datetime] = field(default_factory=dict)

    def add(self, ip: str, first_seen: datetime, geoip: GeoTable | None) -> None:
        if self.first is None or first_seen < self.first:
            self.first = first_seen
        _keep_earliest(self.networks, network_of(ip), first_seen)
        if geoip is not None:
            _keep_earliest(self.countries, geoip.country(ip), first_seen)

    def any_before(self, since: datetime) -> bool:
        return self.first is not None and self.first < since

    def networks_before(self, since: datetime) -> set[str]:
        return {network for network, first in self.networks.items() if first < since}

    def countries_before(self, since: datetime) -> set[str]:
        return {country for country, first in self.countries.items() if first < since}


def _keep_earliest(firsts: dict[str, datetime], name: str | None, moment: datetime) -> None:
    if name is not None and (name not in firsts or moment < firsts[name]):
        firsts[name] = moment


class Sighting(NamedTuple):
    """A client (address) first seen using a key lately; `first_seen` in UTC."""

    key_id: str
    ip: str
    user_agent: str | None
    first_seen: datetime


def load_geoip(path: Path | None) -> GeoTable | None:
    if path is None:
        return None
    try:
        with path.open(encoding="utf-8", errors="replace") as lines:
            table = GeoTable.from_rows(lines)
    except OSError as error:
        log.error("geoip_unreadable", path=str(path), error=type(error).__name__)
        return None
    log.info("geoip_loaded", ranges=len(table))
    return table


@dataclass
class KeyHistory:
    totals: dict[datetime, int] = field(default_factory=lambda: defaultdict(int))
    forbidden: dict[datetime, int] = field(default_factory=lambda: defaultdict(int))


def _hour(moment: datetime) -> datetime:
    aware_moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware_moment.replace(minute=0, second=0, microsecond=0)


def _series(counts: dict[datetime, int], first: datetime, current: datetime) -> list[int]:
    """Hourly counts from `first` up to (not including) `current`, zeros filled in."""
    hours = int((current - first).total_seconds() // 3600)
    return [counts.get(first + timedelta(hours=h), 0) for h in range(max(hours, 0))]


def keys_used_in(hour: datetime, after: str) -> Select[str]:
    """The next BATCH keys (by id, after `after`) with usage in `hour`."""
    return (
        select(KeyUsageHourly.key_id)
        .where(KeyUsageHourly.hour == hour, KeyUsageHourly.key_id > after)
        .group_by(KeyUsageHourly.key_id)
        .order_by(KeyUsageHourly.key_id)
        .limit(BATCH)
    )


class AnomalyDetector:
    """Judges the current hour of usage; the runtime runs it once per interval across the
    deployment (services.schedule)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        geoip: GeoTable | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self._sessions = sessions
        self.geoip = geoip
        self.t = thresholds or Thresholds()

    async def run_once(self, now: datetime | None = None) -> int:
        """Look at the current hour of every key used in it; returns new alerts."""
        moment = now or utcnow()
        async with self._sessions() as db:
            raised = await self._usage_signals(db, _hour(moment))
            raised += await self._network_signals(db, moment)
            await db.commit()
        return raised

    async def _usage_signals(self, db: AsyncSession, current: datetime) -> int:
        """Judge every key used this hour, BATCH keys at a time: with 100,000 keys in use a
        single query held all of their week-long histories in memory at once."""
        raised = 0
        after = ""
        while True:
            keys = (await db.scalars(keys_used_in(current, after))).all()
            if not keys:
                return raised
            after = keys[-1]
            for key_id, history in (await _histories(db, keys, current)).items():
                for spec in self._judge(key_id, history, current):
                    raised += await self._raise(db, key_id, spec) is not None

    def _judge(self, key_id: str, history: KeyHistory, current: datetime) -> list[AlertSpec]:
        t = self.t
        first = min(history.totals)
        totals = _series(history.totals, first, current)
        now_total = history.totals.get(current, 0)
        window = current.isoformat().replace("+00:00", "Z")
        found: list[AlertSpec] = []
        volume = spike(now_total, totals, t.spike_factor, t.spike_floor, t.min_history_hours)
        if volume is not None:
            found.append(
                AlertSpec(
                    kind="volume_spike",
                    severity="medium",
                    message=(
                        f"Key {key_id} made {volume.current} requests this hour, over "
                        f"{t.spike_factor:g}x its usual {volume.baseline:.1f} per hour."
                    ),
                    window=window,
                    details=_details(volume, window),
                )
            )
        forbidden = spike(
            history.forbidden.get(current, 0),
            _series(history.forbidden, first, current),
            t.forbidden_factor,
            t.forbidden_floor,
            0,  # a burst of 403s is suspicious even for a new key
        )
        if forbidden is not None:
            found.append(
                AlertSpec(
                    kind="permission_error_burst",
                    severity="medium",
                    message=(
                        f"Key {key_id} was refused for missing permissions "
                        f"{forbidden.current} times this hour: probing, or a broken client."
                    ),
                    window=window,
                    details=_details(forbidden, window),
                )
            )
        if len(totals) >= t.offhours_min_hours:
            profile = [0] * 24
            for hour, count in history.totals.items():
                if hour < current:
                    profile[hour.hour] += count
            unusual = off_hours(now_total, current.hour, profile, t)
            if unusual is not None:
                found.append(
                    AlertSpec(
                        kind="off_hours",
                        severity="low",
                        message=(
                            f"Key {key_id} made {now_total} requests at {current.hour:02d}:00 "
                            "UTC, an hour in which it is normally idle."
                        ),
                        window=window,
                        details=_details(unusual, window) | {"profile": profile},
                    )
                )
        return found

    async def _network_signals(self, db: AsyncSession, now: datetime) -> int:
        """Compare each client first seen lately with the key's earlier ones, BATCH clients
        at a time, with one query for the earlier clients of a whole batch."""
        raised = 0
        after = ("", "")
        while True:
            fresh = [
                Sighting(key_id, ip, user_agent, aware(first_seen) or now)
                for key_id, ip, user_agent, first_seen in await db.execute(
                    select(
                        KeyClient.key_id, KeyClient.ip, KeyClient.user_agent, KeyClient.first_seen
                    )
                    .where(KeyClient.first_seen >= now - NEW_CLIENT_LOOKBACK)
                    .where(tuple_(KeyClient.key_id, KeyClient.ip) > tuple_(*after))
                    .order_by(KeyClient.key_id, KeyClient.ip)
                    .limit(BATCH)
                )
            ]
            if not fresh:
                return raised
            after = (fresh[-1].key_id, fresh[-1].ip)
            # The earlier clients of the whole batch, streamed and reduced per key to the
            # earliest sighting of each network and country: a key used from web pages can
            # have a row per visitor, and only its networks matter here.
            latest = max(client.first_seen for client in fresh)
            seen: dict[str, Seen] = defaultdict(Seen)
            rows = await db.stream(
                select(KeyClient.key_id, KeyClient.ip, KeyClient.first_seen)
                .where(
                    KeyClient.key_id.in_({client.key_id for client in fresh}),
                    KeyClient.first_seen < latest,
                )
                .execution_options(yield_per=1_000)
            )
            async for key_id, ip, first_seen in rows:
                seen[key_id].add(ip, aware(first_seen) or now, self.geoip)
            for client in fresh:
                since = client.first_seen
                earlier = seen[client.key_id]
                if not earlier.any_before(since):
                    continue  # a key's first client defines its normal
                spec = self._new_place(
                    client, earlier.countries_before(since), earlier.networks_before(since)
                )
                if spec is not None:
                    raised += await self._raise(db, client.key_id, spec) is not None

    def _new_place(
        self, client: Sighting, known: set[str], known_networks: set[str]
    ) -> AlertSpec | None:
        """An alert when `client` comes from a country (with a country file) or a network
        the key's earlier clients never came from."""
        if self.geoip is not None:
            country = self.geoip.country(client.ip)
            if country is not None and known:
                if country in known:
                    return None
                return AlertSpec(
                    kind="new_country",
                    severity="high",
                    message=(
                        f"Key {client.key_id} was used from {country} ({client.ip}) for the "
                        f"first time; it is normally used from {', '.join(sorted(known))}."
                    ),
                    window=country,
                    details={"ip": client.ip, "country": country, "known": sorted(known)},
                    ip=client.ip,
                    user_agent=client.user_agent,
                )
        network = network_of(client.ip)
        if network is None or not known_networks or network in known_networks:
            return None
        return AlertSpec(
            kind="new_network",
            severity="medium",
            message=(f"Key {client.key_id} was used from a new network {network} ({client.ip})."),
            window=network,
            details={"ip": client.ip, "network": network, "known": sorted(known_networks)},
            ip=client.ip,
            user_agent=client.user_agent,
        )

    async def _raise(self, db: AsyncSession, key_id: str, spec: AlertSpec) -> Alert | None:
        key = await db.get(ApiKey, key_id)
        if key is None:
            return None
        placed = AlertSpec(
            kind=spec.kind,
            severity=spec.severity,
            message=spec.message.replace(f"Key {key_id}", f"Key {key.name!r} ({key_id})"),
            window=spec.window,
            org_id=key.org_id,
            project_id=key.project_id,
            key_id=key_id,
            details=spec.details,
            ip=spec.ip,
            user_agent=spec.user_agent,
        )
        return await raise_alert(db, placed)


async def _histories(
    db: AsyncSession, keys: Sequence[str], current: datetime
) -> dict[str, KeyHistory]:
    """The hourly totals and 403s of `keys` over the week up to `current`."""
    rows = await db.execute(
        select(
            KeyUsageHourly.key_id,
            KeyUsageHourly.hour,
            KeyUsageHourly.status_class,
            func.sum(KeyUsageHourly.count),
        )
        .where(KeyUsageHourly.key_id.in_(keys))
        .where(KeyUsageHourly.hour >= current - HISTORY)
        .group_by(KeyUsageHourly.key_id, KeyUsageHourly.hour, KeyUsageHourly.status_class)
    )
    histories: dict[str, KeyHistory] = defaultdict(KeyHistory)
    for key_id, hour, klass, count in rows:
        history = histories[key_id]
        history.totals[_hour(hour)] += int(count)
        if klass == FORBIDDEN:
            history.forbidden[_hour(hour)] += int(count)
    return histories


def _details(finding: Finding, window: str) -> dict[str, Any]:
    return {
        "hour": window,
        "count": finding.current,
        "threshold": round(finding.threshold, 2),
        "baseline": round(finding.baseline, 2),
    }
