"""Bodies of the security-operations endpoints: alerts, webhooks and leak reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from keyplane.api.schemas import Storable, Strict
from keyplane.services.webhooks import EventName

Url = Annotated[str, StringConstraints(min_length=1, max_length=2000), Storable]
ModeName = Literal["live", "test"]
Description = Annotated[str, StringConstraints(max_length=200), Storable]


class AlertOut(BaseModel):
    id: int
    org_id: int | None
    project_id: int | None
    key_id: str | None
    kind: str
    severity: str
    message: str
    details: dict[str, Any]
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None


class AlertPage(BaseModel):
    data: list[AlertOut]
    next_cursor: str | None


class WebhookCreate(Strict):
    url: Url = Field(description="http(s) URL that receives signed JSON POSTs")
    events: list[EventName] | None = Field(
        default=None, max_length=20, description="Events to send; all when omitted"
    )
    mode: ModeName | None = Field(
        default=None,
        description="Which mode's events it receives. An API key's own mode when called with "
        "a key (and must match it); live by default for a dashboard session.",
    )
    description: Description | None = Field(default=None, description="What it is for")


class WebhookUpdate(Strict):
    url: Url | None = None
    events: list[EventName] | None = Field(
        default=None, max_length=20, description="Events to send; all when null"
    )
    description: Description | None = None
    enabled: bool | None = Field(
        default=None,
        description="false pauses deliveries; true re-enables a webhook disabled after "
        "failures (its pending deliveries are sent again)",
    )


class WebhookOut(BaseModel):
    id: int
    project_id: int
    mode: ModeName
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime
    created_by: int | None
    updated_at: datetime
    last_delivered_at: datetime | None = Field(
        description="When a delivery last succeeded (kept after the deliveries themselves are "
        "deleted by housekeeping); null: never"
    )


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret; shown only in this response")


class WebhookList(BaseModel):
    data: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    replay_of: int | None = Field(description="The delivery this one replays")


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None


class LeakReportIn(BaseModel):
    """One match of GitHub secret scanning's partner payload (unknown fields are ignored:
    GitHub may add some)."""

    token: Annotated[str, StringConstraints(max_length=10_000)]
    # Stored in alerts and the audit log: text every database can store.
    type: Annotated[str, StringConstraints(max_length=200), Storable]
    url: Annotated[str, StringConstraints(max_length=4000), Storable] | None = None
    source: Annotated[str, StringConstraints(max_length=200), Storable] | None = None


class LeakFeedback(BaseModel):
    token_hash: str = Field(description="SHA-256 (hex) of the reported token")
    token_type: str
    label: Literal["true_positive", "false_positive"]
