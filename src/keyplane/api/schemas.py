"""Request and response bodies. Requests forbid unknown fields: a typo in a field name must
be an error the user sees, not a setting silently ignored."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from keyplane.domain.keyformat import Mode
from keyplane.domain.keys import KeyLabel


def storable(value: str) -> str:
    """Text every database can store: PostgreSQL refuses NUL, and unpaired surrogates (legal
    in JSON escapes) are not UTF-8 at all. Refused here as a 422, never a 500 later."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from None
    return value


Storable = AfterValidator(storable)
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def not_a_number(value: object) -> object:
    """Date-times are ISO 8601 text; pydantic would also take a number as unix seconds,
    which the schema does not allow and which is a typo more often than not."""
    if isinstance(value, str) and _NUMBER.match(value):
        raise ValueError("expected an ISO 8601 date-time such as 2026-01-01T00:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(not_a_number)]
PermissionName = Annotated[str, StringConstraints(min_length=1, max_length=64), Storable]
Cidr = Annotated[str, StringConstraints(min_length=1, max_length=64), Storable]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), Storable]
Email = Annotated[str, StringConstraints(min_length=3, max_length=320), Storable]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=1024), Storable]
MessageText = Annotated[str, StringConstraints(min_length=1, max_length=32_000), Storable]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RateLimitOverride(Strict):
    per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    per_day: int | None = Field(default=None, ge=1, le=1_000_000_000)


class KeyCreate(Strict):
    name: Name
    permissions: list[PermissionName] = Field(max_length=64)
    mode: Mode = Mode.LIVE
    expires_at: AwareDatetime | None = None
    ip_allowlist: list[Cidr] = Field(default_factory=list, max_length=100)
    rate_limit: RateLimitOverride | None = None
    label: KeyLabel | None = Field(
        default=None,
        description="production (rotate every 90 days), development (180), contractor (30)",
    )
    allow_browser: bool = Field(
        default=False,
        description="Test keys only: may be used from web pages (requests with an Origin "
        "header); any other key is refused there",
    )


class UserKeyCreate(KeyCreate):
    org_id: int | None = Field(default=None, ge=1, le=2**63 - 1)


class KeyUpdate(Strict):
    name: Name | None = None
    permissions: list[PermissionName] | None = Field(default=None, max_length=64)
    expires_at: AwareDatetime | None = None
    ip_allowlist: list[Cidr] | None = Field(default=None, max_length=100)
    rate_limit: RateLimitOverride | None = None
    label: KeyLabel | None = None
    allow_browser: bool | None = Field(default=None, description="Test keys only")


class RotateRequest(Strict):
    grace_seconds: int = Field(
        default=86_400,
        ge=0,
        le=30 * 86_400,
        description="How long the old secret keeps working; 0 revokes it at once.",
    )


class RevealRequest(Strict):
    password: Secret | None = None


class ApiKeyOut(BaseModel):
    id: str
    name: str
    kind: Literal["project", "user"]
    mode: Mode
    project_id: int | None
    user_id: int | None
    hint: str
    permissions: list[str]
    created_at: datetime
    created_by: int | None
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_from: str | None
    ip_allowlist: list[str]
    rate_limit: dict[str, int] | None
    label: KeyLabel | None
    allow_browser: bool = False
    rotate_by: datetime
    rotation_overdue: bool


class ClientOut(BaseModel):
    ip: str
    user_agent: str | None
    last_seen: datetime
    requests: int


class RotationOut(BaseModel):
    replaced_by: str
    rotated_at: datetime
    grace_ends_at: datetime
    still_used_by: int = Field(
        description="Client addresses that used this (old) secret since the rotation"
    )


class ApiKeyDetail(ApiKeyOut):
    clients: list[ClientOut] = Field(description="Addresses that used the key in 7 days")
    rotation: RotationOut | None = Field(
        description="Set while a rotated key is in its grace period"
    )


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="The full key. Shown only in this response; store it now.")


class ApiKeyList(BaseModel):
    data: list[ApiKeyOut]
    limit: int | None = Field(default=None, description="Active project keys allowed")


class UsagePeriod(BaseModel):
    period: datetime
    success: int
    client_error: int
    rate_limited: int
    server_error: int
    total: int


class UsageOut(BaseModel):
    key_id: str
    group_by: Literal["hour", "day"]
    data: list[UsagePeriod]
    permissions: dict[str, int] = Field(description="Requests per permission used")


class AuditEventOut(BaseModel):
    id: int
    action: str
    org_id: int | None
    project_id: int | None
    key_id: str | None
    actor_user_id: int | None
    actor_key_id: str | None
    ip: str | None
    user_agent: str | None
    data: dict[str, Any]
    created_at: datetime


class AuditPage(BaseModel):
    data: list[AuditEventOut]
    next_cursor: str | None


class RevealOut(BaseModel):
    id: str
    secret: str


class PermissionOut(BaseModel):
    name: str
    resource: str
    action: str
    description: str
    implies: list[str]
    level: Literal["project", "organization"]
    grantable_to: list[str]


class PermissionList(BaseModel):
    data: list[PermissionOut]


class ProjectOut(BaseModel):
    id: int
    org_id: int
    name: str
    mode: Mode
    created_at: datetime


class Login(Strict):
    email: Email
    password: Secret


class Reauthenticate(Strict):
    password: Secret


class SessionOut(BaseModel):
    user_id: int
    csrf_token: str


class ConversationCreate(Strict):
    user_id: Name
    message: MessageText


class MessageOut(BaseModel):
    id: int
    conversation_id: int
    role: str
    content: str
    created_at: datetime


class ConversationOut(BaseModel):
    id: int
    project_id: int
    user_id: str
    status: Literal["resolved", "unresolved"]
    labels: list[str]
    created_at: datetime
    updated_at: datetime


class ConversationCreated(ConversationOut):
    messages: list[MessageOut]


class ConversationPage(BaseModel):
    data: list[ConversationOut]
    next_cursor: str | None


class MessageList(BaseModel):
    data: list[MessageOut]


LabelName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f/]+$"
    ),
    Storable,
]


class ConversationUpdate(Strict):
    status: Literal["resolved", "unresolved"] | None = None
    labels: list[LabelName] | None = Field(
        default=None,
        max_length=50,
        description="Replaces the conversation's labels; matched to the project's labels "
        "case-insensitively, new ones created.",
    )


class MessageCreate(Strict):
    content: MessageText
    role: Literal["user", "agent"] = Field(
        default="user",
        description="user: the end user; agent: a person on your team answering. (assistant "
        "messages are the generated answers of /generate only.)",
    )


class GeneratedMessage(BaseModel):
    id: int
    conversation_id: int
    role: Literal["assistant"]
    content: str
    created_at: datetime


class Source(BaseModel):
    snippet_id: int
    title: str
    url: str | None
    score: float = Field(description="Full-text relevance; higher is better")


class GenerateOut(BaseModel):
    message: GeneratedMessage
    sources: list[Source]


class ErrorBody(BaseModel):
    error: str
    message: str
    model_config = ConfigDict(extra="allow")


def errors_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error bodies an endpoint can answer with."""
    return {status: {"model": ErrorBody} for status in statuses}
