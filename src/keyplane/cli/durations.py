"""Human durations for the CLI: `90d`, `24h`, `30m`, `45s`, `0`."""

from __future__ import annotations

import re

import typer

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^(\d{1,6})([smhdw]?)$")


def parse_duration(text: str) -> int:
    match = _PATTERN.match(text.strip().lower())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration; use e.g. 90d, 24h, 30m or 0.")
    number, unit = match.groups()
    return int(number) * _UNITS[unit or "s"]


def parse_rate(text: str) -> dict[str, int]:
    """`100/min` or `5000/day` as a per-key rate-limit override."""
    match = re.fullmatch(r"(\d{1,9})/(min|minute|day)", text.strip().lower())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a rate; use e.g. 50/min or 5000/day.")
    number, unit = match.groups()
    return {"per_day" if unit == "day" else "per_minute": int(number)}
