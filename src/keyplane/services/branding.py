"""White-label basics per organization (issue 12): a product name, a logo, a colour for the
login and dashboard pages, and the base URL that key dialogs and examples show (a reseller's
own API domain in front of keyplane)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import Organization, OrgBranding
from keyplane.adapters.sql.repositories import utcnow
from keyplane.domain.errors import NotFound, ValidationFailed
from keyplane.services import accounts

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_NETLOC = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


@dataclass(frozen=True)
class Branding:
    org_id: int
    product_name: str | None
    logo_url: str | None
    color: str | None
    base_url: str | None

    @property
    def logo_origin(self) -> str | None:
        """Where the logo comes from, for the pages' Content-Security-Policy."""
        if not self.logo_url:
            return None
        parts = urlsplit(self.logo_url)
        return f"{parts.scheme}://{parts.netloc}"


def _of(row: OrgBranding) -> Branding:
    return Branding(row.org_id, row.product_name, row.logo_url, row.color, row.base_url)


async def get(db: AsyncSession, org_id: int) -> Branding | None:
    row = await db.get(OrgBranding, org_id)
    return None if row is None else _of(row)


async def for_orgs(db: AsyncSession, org_ids: list[int]) -> dict[int, Branding]:
    if not org_ids:
        return {}
    rows = await db.scalars(select(OrgBranding).where(OrgBranding.org_id.in_(org_ids)))
    return {row.org_id: _of(row) for row in rows.all()}


def _https_url(value: str, field: str, example: str) -> str:
    parts = urlsplit(value)
    if (
        parts.scheme != "https"
        or not parts.hostname
        # A plain host (and port): the logo's origin goes into the pages' security policy.
        or not _NETLOC.match(parts.netloc)
        or parts.fragment
        or any(c.isspace() or c in "\"'<>" for c in value)
        or len(value) > 500
    ):
        raise ValidationFailed(
            f"The {field.replace('_', ' ')} must be an https URL such as {example}.",
            details=[{"loc": [field], "msg": "not an https URL"}],
        )
    return value


async def configure(
    db: AsyncSession,
    org_id: int,
    *,
    product_name: str | None,
    logo_url: str | None,
    color: str | None,
    base_url: str | None,
    actor_user_id: int | None = None,
) -> Branding:
    """Set the organization's branding; empty values fall back to keyplane's defaults."""
    if await db.get(Organization, org_id) is None:
        raise NotFound(f"No organization with id {org_id}.")
    product_name = (product_name or "").strip() or None
    if product_name is not None and (len(product_name) > 100 or not product_name.isprintable()):
        raise ValidationFailed(
            "The product name must be at most 100 printable characters.",
            details=[{"loc": ["product_name"], "msg": "invalid"}],
        )
    logo_url = (logo_url or "").strip() or None
    if logo_url is not None:
        logo_url = _https_url(logo_url, "logo_url", "https://cdn.example.com/logo.svg")
    color = (color or "").strip() or None
    if color is not None and not _COLOUR.match(color):
        raise ValidationFailed(
            "The colour must be a hex colour such as #2f5bd3.",
            details=[{"loc": ["color"], "msg": "not #rrggbb"}],
        )
    base_url = (base_url or "").strip() or None
    if base_url is not None:
        base_url = _https_url(base_url, "base_url", "https://api.example.com").rstrip("/")
        if urlsplit(base_url).query:
            raise ValidationFailed(
                "The base URL cannot carry a query string.",
                details=[{"loc": ["base_url"], "msg": "query"}],
            )
    row = await db.get(OrgBranding, org_id)
    if row is None:
        row = OrgBranding(org_id=org_id)
        db.add(row)
    row.product_name = product_name
    row.logo_url = logo_url
    row.color = color.lower() if color else None
    row.base_url = base_url
    row.updated_at = utcnow()
    accounts._member_event(
        db,
        "org.branding_set",
        org_id,
        actor_user_id=actor_user_id,
        product_name=product_name,
        logo_url=logo_url,
        color=row.color,
        base_url=base_url,
    )
    await db.flush()
    return _of(row)
