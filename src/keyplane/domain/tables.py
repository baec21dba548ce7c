"""Data tables: column types and the checking of row values against them (pure)."""

from __future__ import annotations

import math
from datetime import date
from enum import StrEnum
from typing import Any

from keyplane.domain.errors import ValidationFailed

MAX_COLUMNS = 50
MAX_TEXT = 10_000


class ColumnType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"


def _problem(column: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"Column '{column}': {message}.",
        details=[{"loc": ["body", "values", column], "msg": message}],
    )


def check_value(column: str, kind: ColumnType, value: Any) -> Any:
    """The value as stored, or a ValidationFailed naming the column. None clears a cell."""
    if value is None:
        return None
    if kind is ColumnType.TEXT:
        if not isinstance(value, str):
            raise _problem(column, f"expected text, got {type(value).__name__}")
        if len(value) > MAX_TEXT:
            raise _problem(column, f"text longer than {MAX_TEXT} characters")
        if "\x00" in value:
            raise _problem(column, "text must not contain NUL characters")
        return value
    if kind is ColumnType.NUMBER:
        # bool is an int in Python; a JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _problem(column, f"expected a number, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _problem(column, "expected a finite number")
        if isinstance(value, int) and abs(value) > 2**53:
            raise _problem(column, "number out of range (at most 2^53 in magnitude)")
        return value
    if kind is ColumnType.BOOLEAN:
        if not isinstance(value, bool):
            raise _problem(column, f"expected true or false, got {type(value).__name__}")
        return value
    if not isinstance(value, str) or len(value) != 10:
        shown = value[:40] if isinstance(value, str) else type(value).__name__
        raise _problem(column, f"expected a date as YYYY-MM-DD, got '{shown}'")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise _problem(column, f"expected a date as YYYY-MM-DD, got '{value}'") from None


def check_row(
    columns: dict[str, ColumnType], values: dict[str, Any], *, partial: bool
) -> dict[str, Any]:
    """Checks every cell; unknown columns are refused (a typo must not vanish silently).
    A full row gets None for the columns it leaves out."""
    unknown = sorted(set(values) - set(columns))
    if unknown:
        raise ValidationFailed(
            f"Unknown column '{unknown[0]}'; the table has: {', '.join(columns)}.",
            details=[
                {"loc": ["body", "values", name], "msg": "unknown column"} for name in unknown
            ],
        )
    checked = {name: check_value(name, columns[name], v) for name, v in values.items()}
    if not partial:
        checked = {name: checked.get(name) for name in columns}
    return checked


def parse_filter(columns: dict[str, ColumnType], text: str) -> tuple[str, ColumnType, Any]:
    """`column:value` (equality), the value read as the column's type."""
    name, sep, raw = text.partition(":")
    if not sep or name not in columns:
        raise ValidationFailed(
            "filter must be 'column:value' naming one of the table's columns "
            f"({', '.join(columns)}).",
            details=[{"loc": ["query", "filter"], "msg": "invalid filter"}],
        )
    kind = columns[name]
    value: Any = raw
    try:
        if kind is ColumnType.NUMBER:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
        elif kind is ColumnType.BOOLEAN:
            if raw not in ("true", "false"):
                raise ValueError(raw)
            value = raw == "true"
        elif kind is ColumnType.DATE:
            value = date.fromisoformat(raw).isoformat()
    except ValueError:
        raise ValidationFailed(
            f"filter value '{raw[:40]}' is not a valid {kind} for column '{name}'.",
            details=[{"loc": ["query", "filter"], "msg": f"expected {kind}"}],
        ) from None
    return name, kind, value
