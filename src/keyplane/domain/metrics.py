"""Date buckets for the metrics endpoint (pure): validation of the range and the list of
every bucket in it, so that empty ones are reported with zeros."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from keyplane.domain.errors import ValidationFailed

MAX_SPAN_DAYS = 731  # two years of daily points at most


class GroupBy(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def parse_day(name: str, text: str) -> date:
    """A date (2026-11-23) or a date-time (2026-11-23T10:00:00, with or without offset, as
    Python's isoformat() writes it); a date-time counts by its UTC day."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 date-time; got '{text[:40]}'.",
            details=[{"loc": ["query", name], "msg": "invalid date"}],
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date()


def check_range(start: date, end: date) -> None:
    if start > end:
        raise ValidationFailed(
            f"start_date ({start}) is after end_date ({end}).",
            details=[{"loc": ["query", "start_date"], "msg": "start_date after end_date"}],
        )
    if (end - start).days > MAX_SPAN_DAYS:
        raise ValidationFailed(
            f"The range spans {(end - start).days} days; ask for at most {MAX_SPAN_DAYS} "
            "per request.",
            details=[{"loc": ["query", "end_date"], "msg": "range too long"}],
        )


def bucket_of(day: date, group_by: GroupBy) -> date:
    if group_by is GroupBy.WEEK:
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if group_by is GroupBy.MONTH:
        return day.replace(day=1)
    return day


def buckets(start: date, end: date, group_by: GroupBy) -> list[date]:
    """Every bucket the range touches, in order."""
    found: list[date] = []
    current = bucket_of(start, group_by)
    while current <= end:
        found.append(current)
        if group_by is GroupBy.DAY:
            current += timedelta(days=1)
        elif group_by is GroupBy.WEEK:
            current += timedelta(days=7)
        else:
            year, month = divmod(current.month, 12)
            current = date(current.year + year, month + 1, 1)
    return found
