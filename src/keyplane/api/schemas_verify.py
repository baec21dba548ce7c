"""Bodies of the key verification endpoints (issue 10) and of custom permissions."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from keyplane.api.schemas import Storable, Strict
from keyplane.domain.keyformat import Mode

MAX_ID = 2**63 - 1


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


KeyText = Annotated[str, StringConstraints(min_length=1, max_length=200), Storable]
PermissionText = Annotated[str, StringConstraints(min_length=1, max_length=64), Storable]
Address = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_address)]


class VerifyKeyRequest(Strict):
    key: KeyText = Field(description="The key to verify, exactly as the client sent it.")
    permission: PermissionText | None = Field(
        default=None,
        description="A permission the key must hold: built-in or registered for its project.",
    )
    project_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="The project the request is for; a project key of another project is "
        "project_mismatch. Needed to check a user key's access to a project.",
    )
    ip: Address | None = Field(
        default=None,
        description="The client's address, checked against the key's IP allowlist; a key "
        "with an allowlist is refused without it.",
    )


class RateLimitOut(BaseModel):
    limit: int
    remaining: int
    reset: int


class VerifyKeyResponse(BaseModel):
    valid: bool
    code: str = Field(description="VALID, or an error code of DESIGN §4.")
    message: str
    key_id: str | None
    kind: Literal["project", "user"] | None
    project_id: int | None
    mode: Mode | None
    permissions: list[str]
    expires_at: int | None
    ratelimit: RateLimitOut | None
    model_config = ConfigDict(extra="allow")


CustomName = Annotated[str, StringConstraints(min_length=1, max_length=64), Storable]


class CustomPermissionCreate(Strict):
    name: CustomName = Field(description="resource:action, e.g. invoices:read")
    description: Annotated[str, StringConstraints(max_length=200), Storable] = ""
    implies: list[CustomName] | None = Field(
        default=None,
        max_length=50,
        description="Registered permissions this one includes; omitted: <resource>:read "
        "when registered and this is not itself a read.",
    )


class CustomPermissionOut(BaseModel):
    name: str
    resource: str
    action: str
    description: str
    implies: list[str]
    project_id: int
    created_at: str


class CustomPermissionList(BaseModel):
    data: list[CustomPermissionOut]
