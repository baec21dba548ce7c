"""Request and response bodies of tables, files, metrics, deployments and exports.
Requests forbid unknown fields, like every request body (see `schemas.py`)."""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from keyplane.api.schemas import Name, Storable, Strict, storable
from keyplane.domain.tables import ColumnType

MAX_JSON_DEPTH = 8


def storable_json(value: Any, depth: int = 0) -> Any:
    """Free JSON (configs, cell values) with only text every database can store."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        storable(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            storable(key)
            storable_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            storable_json(item, depth + 1)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(storable_json)]
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=64), Storable]


# --- tables ----------------------------------------------------------------------------------
class ColumnSpec(Strict):
    name: ColumnName
    type: ColumnType


class TableCreate(Strict):
    name: Name
    columns: list[ColumnSpec] = Field(min_length=1, max_length=50)


class TableOut(BaseModel):
    id: int
    name: str
    columns: list[ColumnSpec]
    created_at: datetime


class TablePage(BaseModel):
    data: list[TableOut]
    next_cursor: str | None


class RowWrite(Strict):
    values: JsonObject = Field(description="Cells by column name, checked against its type")


class RowOut(BaseModel):
    id: int
    table_id: int
    values: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RowPage(BaseModel):
    data: list[RowOut]
    next_cursor: str | None


# --- files -----------------------------------------------------------------------------------
class FileOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


class FilePage(BaseModel):
    data: list[FileOut]
    next_cursor: str | None


# --- metrics ---------------------------------------------------------------------------------
class MetricPoint(BaseModel):
    date: dt.date = Field(description="First day of the bucket (a Monday for weeks)")
    conversations: int
    messages: int
    resolved: int
    generated_answers: int


class MetricSeries(BaseModel):
    data: list[MetricPoint]


# --- deployments -----------------------------------------------------------------------------
Channel = Literal["web", "slack", "whatsapp", "api"]
DeploymentStatus = Literal["active", "paused"]


class DeploymentCreate(Strict):
    channel: Channel
    name: Name
    config: JsonObject = Field(default_factory=dict)
    status: DeploymentStatus = "active"


class DeploymentOut(BaseModel):
    id: int
    channel: Channel
    name: str
    config: dict[str, Any]
    status: DeploymentStatus
    created_at: datetime
    updated_at: datetime


class DeploymentPage(BaseModel):
    data: list[DeploymentOut]
    next_cursor: str | None
