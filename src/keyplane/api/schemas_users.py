"""Bodies of the end-user (userpool) endpoints."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from keyplane.api.schemas import Storable, Strict, storable

MAX_ATTRIBUTES_BYTES = 16_384
MAX_DEPTH = 8

Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    Storable,
]
# BCP 47 shaped: "en", "de-DE", "pt_BR", "zh-Hant-TW".
Locale = Annotated[
    str,
    StringConstraints(max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$"),
]
PersonName = Annotated[str, StringConstraints(max_length=200), Storable]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200), Storable]


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"must not nest deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        storable(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            storable(key)
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)


def attributes(value: dict[str, Any]) -> dict[str, Any]:
    _check_json(value)
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON")
    return value


class EndUserUpsert(Strict):
    """Only the fields sent change; null clears a field. `external_attributes` is merged into
    the stored object (JSON Merge Patch: a null value removes that attribute)."""

    first_name: PersonName | None = None
    last_name: PersonName | None = None
    email: Email | None = None
    locale: Locale | None = None
    external_attributes: Annotated[dict[str, Any], AfterValidator(attributes)] | None = None


class EndUserOut(BaseModel):
    external_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    locale: str | None
    external_attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class EndUserPage(BaseModel):
    data: list[EndUserOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")
