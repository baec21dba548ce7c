"""Anomaly maths over a key's own history (issue 7): pure functions, no storage.

Each detector compares the current hour with the same key's past, so that a busy key and a
quiet one are each judged by their own normal; floors keep tiny numbers from alerting."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean


@dataclass(frozen=True)
class Thresholds:
    spike_factor: float = 5.0  # current hour > factor * trailing mean …
    spike_floor: int = 100  # … and at least this many requests
    min_history_hours: int = 24  # a younger key has no baseline yet
    forbidden_factor: float = 5.0
    forbidden_floor: int = 20
    offhours_min_history: int = 200  # requests in the profile before it means anything
    offhours_quiet_share: float = 0.01  # an hour-of-day with under 1% of the key's traffic
    offhours_floor: int = 10
    offhours_min_hours: int = 72


@dataclass(frozen=True)
class Finding:
    current: int
    threshold: float
    baseline: float


def spike(
    current: int, history: Sequence[int], factor: float, floor: int, min_history: int
) -> Finding | None:
    """`current` against the trailing hourly counts `history` (oldest first, zeros
    included): a finding when current > max(factor * mean(history), floor)."""
    if len(history) < min_history:
        return None
    baseline = fmean(history) if history else 0.0
    threshold = max(factor * baseline, float(floor))
    return Finding(current, threshold, baseline) if current > threshold else None


def off_hours(
    current: int, hour_of_day: int, profile: Sequence[int], t: Thresholds
) -> Finding | None:
    """`profile[h]` is the key's requests in hour-of-day h over its history. Activity in an
    hour-of-day that normally carries under `quiet_share` of the traffic is off-hours."""
    total = sum(profile)
    if total < t.offhours_min_history or current < t.offhours_floor:
        return None
    share = profile[hour_of_day] / total
    if share >= t.offhours_quiet_share:
        return None
    return Finding(current, t.offhours_quiet_share * total, float(profile[hour_of_day]))


def network_of(address: str) -> str | None:
    """The /16 of an IPv4 address or the /48 of an IPv6 one (None: not an address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 16 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
