"""Issuing, listing, editing, rotating, revealing and revoking API keys (DESIGN §2, §3, §7)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import ApiKey, AuditEvent, Organization, OrgMember, Project
from keyplane.adapters.sql.repositories import (
    aware,
    custom_catalog,
    iso,
    key_changed,
    org_limits,
    project_access,
    utcnow,
)
from keyplane.domain import keyformat
from keyplane.domain.custom_permissions import NAME, CustomCatalog, is_builtin
from keyplane.domain.errors import (
    Conflict,
    InsufficientPermissions,
    KeyLimitReached,
    NotFound,
    ProjectMismatch,
    ValidationFailed,
)
from keyplane.domain.keyformat import Mode
from keyplane.domain.keys import ROTATION_DAYS, KeyKind, KeyLabel, parse_ip_allowlist
from keyplane.domain.permissions import (
    Permission,
    apply_edit,
    check_grantable,
    closure,
    parse_permissions,
)
from keyplane.domain.ratelimit import Limits
from keyplane.services.crypto import Keyring

MAX_NAME_LENGTH = 200

# The longest an old secret keeps working after a rotation.
MAX_GRACE_SECONDS = 30 * 86400


@dataclass(frozen=True)
class Actor:
    """Who asks for a key operation. `user_id` None is the operator at the CLI, who may do
    anything; a request through a user key is limited further by that key's scopes."""

    user_id: int | None
    key_id: str | None = None
    key_scopes: frozenset[Permission] | None = None
    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def operator(cls) -> Actor:
        return cls(user_id=None)

    def audit_event(
        self,
        action: str,
        data: dict[str, Any],
        *,
        org_id: int | None,
        project_id: int | None,
        key_id: str | None = None,
    ) -> AuditEvent:
        """The audit row of one change this actor made: who, from where (IP, user agent), when."""
        return AuditEvent(
            org_id=org_id,
            project_id=project_id,
            action=action,
            actor_user_id=self.user_id,
            actor_key_id=self.key_id,
            key_id=key_id,
            ip=self.ip,
            user_agent=(self.user_agent or "")[:400] or None,
            data=data,
            created_at=utcnow(),
        )


@dataclass
class KeySpec:
    name: str
    permissions: list[str]
    mode: Mode = Mode.LIVE
    expires_at: datetime | None = None
    ip_allowlist: list[str] = field(default_factory=list)
    rate_limit: dict[str, int] | None = None
    label: KeyLabel | None = None
    allow_browser: bool = False


@dataclass
class KeyChanges:
    """A PATCH: only the fields that were sent are set (`UNSET` stays untouched)."""

    name: str | None = None
    permissions: list[str] | None = None
    expires_at: datetime | object | None = None
    ip_allowlist: list[str] | None = None
    rate_limit: dict[str, int] | object | None = None
    label: KeyLabel | None = None
    allow_browser: bool | None = None
    sent: frozenset[str] = frozenset()


@dataclass(frozen=True)
class IssuedKey:
    row: ApiKey
    secret: str


def describe(row: ApiKey) -> dict[str, Any]:
    """The public JSON of a key (DESIGN §7). Never contains the secret."""
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "mode": row.mode,
        "project_id": row.project_id,
        "user_id": row.user_id,
        "hint": "…" + row.hint,
        "permissions": sorted(row.permissions),
        "created_at": iso(row.created_at),
        "created_by": row.created_by,
        "last_used_at": iso(row.last_used_at),
        "expires_at": iso(row.expires_at),
        "revoked_at": iso(row.revoked_at),
        "rotated_from": row.rotated_from,
        "ip_allowlist": list(row.ip_allowlist or []),
        "rate_limit": row.rate_limit,
        "label": row.label,
        "allow_browser": bool(row.allow_browser),
        **rotation_schedule(row),
    }


def rotation_schedule(row: ApiKey) -> dict[str, Any]:
    """When the key should be rotated by its label's schedule, and whether that is past."""
    created = aware(row.created_at)
    assert created is not None
    label = KeyLabel(row.label) if row.label else None
    due = created + timedelta(days=ROTATION_DAYS[label])
    return {"rotate_by": iso(due), "rotation_overdue": due <= utcnow()}


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationFailed(
            f"A key needs a name of 1 to {MAX_NAME_LENGTH} characters that says what it is for, "
            "e.g. 'Production CRM Sync'.",
            details=[{"loc": ["name"], "msg": "invalid length"}],
        )
    return name


def _clean_rate_limit(
    rate_limit: dict[str, int] | None, org: Organization
) -> dict[str, int] | None:
    """A key's own limits: lower than its organization's, or anything in range for an
    enterprise organization (DESIGN §5)."""
    if not rate_limit:
        return None
    allowed = {"per_minute", "per_day"}
    if set(rate_limit) - allowed or any(
        not isinstance(v, int) or isinstance(v, bool) for v in rate_limit.values()
    ):
        raise ValidationFailed(
            'rate_limit takes integers per_minute and/or per_day, e.g. {"per_minute": 50}.',
            details=[{"loc": ["rate_limit"], "msg": "invalid rate limit"}],
        )
    shared = org_limits(org)
    wanted = Limits(  # validates the ranges, naming what is wrong
        per_minute=rate_limit.get("per_minute", shared.per_minute),
        per_day=rate_limit.get("per_day", shared.per_day),
    )
    if org.plan != "enterprise" and (
        wanted.per_minute > shared.per_minute or wanted.per_day > shared.per_day
    ):
        raise ValidationFailed(
            f"A key's rate limit can only lower the {org.plan} plan's "
            f"{shared.per_minute}/min and {shared.per_day}/day; enterprise organizations can "
            "set custom limits.",
            details=[{"loc": ["rate_limit"], "msg": "above the plan's limits"}],
        )
    return dict(rate_limit)


def _future(expires_at: datetime | None) -> datetime | None:
    expires_at = aware(expires_at)
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationFailed(
            "expires_at is in the past; give a future time (ISO 8601 with a timezone).",
            details=[{"loc": ["expires_at"], "msg": "must be in the future"}],
        )
    return expires_at


class KeyManager:
    def __init__(self, keyring: Keyring, max_keys_per_project: int) -> None:
        self.keyring = keyring
        self.max_keys_per_project = max_keys_per_project

    # --- who may do what ---------------------------------------------------------------------
    async def held_on_project(
        self, db: AsyncSession, actor: Actor, project_id: int
    ) -> frozenset[Permission] | None:
        """What the actor holds on the project (None: the operator, who holds everything)."""
        if actor.user_id is None:
            if await db.get(Project, project_id) is None:
                raise NotFound(f"No project with id {project_id}.")
            return None
        access = await project_access(db, actor.user_id, project_id)
        if access is None:
            if actor.key_id is not None:
                raise ProjectMismatch(
                    f"This user key cannot reach project {project_id}: its owner has no access "
                    "to it."
                )
            raise NotFound(f"No project with id {project_id} that you can access.")
        held = access[1]
        return held if actor.key_scopes is None else held & actor.key_scopes

    async def require(
        self, db: AsyncSession, actor: Actor, project_id: int, permission: Permission
    ) -> frozenset[Permission] | None:
        held = await self.held_on_project(db, actor, project_id)
        if held is not None and permission not in held:
            raise InsufficientPermissions(
                f"You need {permission} on project {project_id} for this.",
                required=str(permission),
            )
        return held

    @staticmethod
    def _check_held(
        wanted: frozenset[Permission], held: frozenset[Permission] | None, where: str
    ) -> None:
        if held is None:
            return
        for permission in sorted(wanted - held):
            raise InsufficientPermissions(
                f"You cannot grant {permission}: you do not hold it {where}. A key can only "
                "hold permissions its creator holds.",
                required=str(permission),
            )

    # --- project keys ------------------------------------------------------------------------
    async def create_project_key(
        self, db: AsyncSession, actor: Actor, project_id: int, spec: KeySpec
    ) -> IssuedKey:
        held = await self.require(db, actor, project_id, Permission.API_KEY_WRITE)
        # The project's own permissions (issue 10) may be granted by anyone who may create
        # keys here; built-in ones only by those who hold them.
        catalog = await custom_catalog(db, project_id)
        requested, custom = catalog.split(spec.permissions)
        check_grantable(requested, user_key=False)
        granted = closure(requested)
        self._check_held(granted, held, f"on project {project_id}")
        custom = catalog.closure(custom)
        # Lock the project row (PostgreSQL) so two concurrent creations cannot both pass the
        # limit; SQLite serialises writers anyway.
        project = await db.scalar(select(Project).where(Project.id == project_id).with_for_update())
        assert project is not None
        active = await db.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.project_id == project_id, ApiKey.revoked_at.is_(None))
        )
        if (active or 0) >= self.max_keys_per_project:
            raise KeyLimitReached(
                f"Project {project_id} already has {active} active API keys, the maximum of "
                f"{self.max_keys_per_project}; delete one you no longer use before creating "
                "another.",
                limit=self.max_keys_per_project,
            )
        return await self._issue(
            db,
            actor,
            spec,
            granted | custom,
            kind=KeyKind.PROJECT,
            org_id=project.org_id,
            project_id=project_id,
            user_id=None,
        )

    async def list_project_keys(
        self, db: AsyncSession, actor: Actor, project_id: int
    ) -> list[ApiKey]:
        await self.require(db, actor, project_id, Permission.API_KEY_READ)
        rows = await db.scalars(
            select(ApiKey)
            .where(ApiKey.project_id == project_id, ApiKey.kind == KeyKind.PROJECT)
            .where(ApiKey.revoked_at.is_(None) | (ApiKey.revoked_at > utcnow()))
            .order_by(ApiKey.created_at, ApiKey.id)
        )
        return list(rows.all())

    async def project_key(
        self, db: AsyncSession, actor: Actor, project_id: int, key_id: str, permission: Permission
    ) -> tuple[ApiKey, frozenset[Permission] | None]:
        held = await self.require(db, actor, project_id, permission)
        row = await db.get(ApiKey, key_id)
        if row is None or row.project_id != project_id or _gone(row):
            raise NotFound(f"No API key {key_id!r} in project {project_id}.")
        return row, held

    async def project_key_record(
        self, db: AsyncSession, actor: Actor, project_id: int, key_id: str
    ) -> ApiKey:
        """A project key even after it was revoked (with api_key:read): responding to a
        compromise means looking at what a revoked key did."""
        await self.require(db, actor, project_id, Permission.API_KEY_READ)
        row = await db.get(ApiKey, key_id)
        if row is None or row.project_id != project_id or row.kind != KeyKind.PROJECT:
            raise NotFound(f"No API key {key_id!r} in project {project_id}.")
        return row

    async def successor(self, db: AsyncSession, row: ApiKey) -> ApiKey | None:
        """The key that replaced `row` (by rotation or as a copy), if any."""
        return await db.scalar(
            select(ApiKey).where(ApiKey.rotated_from == row.id).order_by(ApiKey.created_at)
        )

    # --- user keys ---------------------------------------------------------------------------
    async def _user_scope(self, db: AsyncSession, user_id: int, org_id: int | None) -> int:
        orgs = (
            await db.scalars(select(OrgMember.org_id).where(OrgMember.user_id == user_id))
        ).all()
        if org_id is None:
            if len(orgs) != 1:
                raise ValidationFailed(
                    "You belong to several organizations; say which one with org_id.",
                    details=[{"loc": ["org_id"], "msg": "required"}],
                )
            return orgs[0]
        if org_id not in orgs:
            raise NotFound(f"No organization {org_id} that you belong to.")
        return org_id

    async def held_in_org(
        self, db: AsyncSession, user_id: int, org_id: int
    ) -> frozenset[Permission]:
        held: set[Permission] = set()
        for project_id in (
            await db.scalars(select(Project.id).where(Project.org_id == org_id))
        ).all():
            access = await project_access(db, user_id, project_id)
            if access is not None:
                held |= access[1]
        return frozenset(held)

    async def create_user_key(
        self,
        db: AsyncSession,
        actor: Actor,
        owner_id: int,
        spec: KeySpec,
        org_id: int | None = None,
    ) -> IssuedKey:
        org_id = await self._user_scope(db, owner_id, org_id)
        _no_custom(spec.permissions)
        requested = parse_permissions(spec.permissions)
        check_grantable(requested, user_key=True)
        granted = closure(requested)
        if actor.user_id is not None:
            held = await self.held_in_org(db, owner_id, org_id)
            if actor.key_scopes is not None:
                if Permission.API_KEY_WRITE not in actor.key_scopes:
                    raise InsufficientPermissions(
                        "Creating keys through a user key needs api_key:write on that key.",
                        required=str(Permission.API_KEY_WRITE),
                    )
                held &= actor.key_scopes
            self._check_held(granted, held, "on any project of your organization")
        return await self._issue(
            db,
            actor,
            spec,
            granted,
            kind=KeyKind.USER,
            org_id=org_id,
            project_id=None,
            user_id=owner_id,
        )

    async def list_user_keys(self, db: AsyncSession, owner_id: int) -> list[ApiKey]:
        rows = await db.scalars(
            select(ApiKey)
            .where(ApiKey.user_id == owner_id, ApiKey.kind == KeyKind.USER)
            .where(ApiKey.revoked_at.is_(None) | (ApiKey.revoked_at > utcnow()))
            .order_by(ApiKey.created_at, ApiKey.id)
        )
        return list(rows.all())

    async def user_key(self, db: AsyncSession, owner_id: int, key_id: str) -> ApiKey:
        row = await db.get(ApiKey, key_id)
        if row is None or row.user_id != owner_id or row.kind != KeyKind.USER or _gone(row):
            raise NotFound(f"No user key {key_id!r} of yours.")
        return row

    # --- any key -----------------------------------------------------------------------------
    async def _issue(
        self,
        db: AsyncSession,
        actor: Actor,
        spec: KeySpec,
        granted: frozenset[str],
        *,
        kind: KeyKind,
        org_id: int,
        project_id: int | None,
        user_id: int | None,
        rotated_from: str | None = None,
    ) -> IssuedKey:
        _check_browser(spec.allow_browser, spec.mode)
        secret = keyformat.generate(spec.mode)
        key_id = "key_" + "".join(secrets.choice(keyformat.BASE62) for _ in range(16))
        version, sealed = self.keyring.encrypt(secret, key_id)
        now = utcnow()
        row = ApiKey(
            id=key_id,
            kind=kind,
            mode=spec.mode,
            org_id=org_id,
            project_id=project_id,
            user_id=user_id,
            name=_clean_name(spec.name),
            lookup=self.keyring.lookup_hash(secret),
            secret_version=version,
            secret_sealed=sealed,
            hint=keyformat.hint(secret),
            permissions=sorted(granted),
            ip_allowlist=[str(n) for n in parse_ip_allowlist(spec.ip_allowlist)],
            rate_limit=_clean_rate_limit(spec.rate_limit, await self._org(db, org_id)),
            label=spec.label,
            allow_browser=spec.allow_browser,
            created_at=now,
            created_by=actor.user_id,
            updated_at=now,
            expires_at=_future(spec.expires_at),
            rotated_from=rotated_from,
        )
        db.add(row)
        action = "api_key.rotated" if rotated_from else "api_key.created"
        self._audit(
            db,
            actor,
            row,
            action,
            {
                "permissions": row.permissions,
                "rotated_from": rotated_from,
            },
        )
        await db.flush()
        await _announce(db, row, action)
        return IssuedKey(row=row, secret=secret)

    async def update(
        self,
        db: AsyncSession,
        actor: Actor,
        row: ApiKey,
        changes: KeyChanges,
        held: frozenset[Permission] | None,
    ) -> ApiKey:
        diff: dict[str, Any] = {}
        if "name" in changes.sent and changes.name is not None:
            diff["name"] = [row.name, _clean_name(changes.name)]
            row.name = diff["name"][1]
        if "permissions" in changes.sent and changes.permissions is not None:
            if row.kind == KeyKind.PROJECT and row.project_id is not None:
                catalog = await custom_catalog(db, row.project_id)
            else:
                _no_custom(changes.permissions)
                catalog = CustomCatalog()
            requested, custom = catalog.split(changes.permissions)
            check_grantable(requested, user_key=row.kind == KeyKind.USER)
            current = frozenset(Permission(p) for p in row.permissions if is_builtin(p))
            new = apply_edit(current, requested)
            self._check_held(new - current, held, "yourself")
            current_custom = frozenset(p for p in row.permissions if not is_builtin(p))
            new_custom = catalog.apply_edit(current_custom, custom)
            before, after = set(row.permissions), set(new) | new_custom
            diff["permissions"] = {
                "added": sorted(after - before),
                "removed": sorted(before - after),
            }
            row.permissions = sorted(after)
        if "expires_at" in changes.sent:
            expires = changes.expires_at
            assert expires is None or isinstance(expires, datetime)
            row.expires_at = _future(expires)
            row.expiry_notice = None  # a new expiry gets its reminders again
            diff["expires_at"] = iso(row.expires_at)
        if "ip_allowlist" in changes.sent:
            row.ip_allowlist = [str(n) for n in parse_ip_allowlist(changes.ip_allowlist or [])]
            diff["ip_allowlist"] = row.ip_allowlist
        if "label" in changes.sent:
            diff["label"] = [row.label, changes.label]
            row.label = changes.label
        if "allow_browser" in changes.sent and changes.allow_browser is not None:
            _check_browser(changes.allow_browser, Mode(row.mode))
            diff["allow_browser"] = [bool(row.allow_browser), changes.allow_browser]
            row.allow_browser = changes.allow_browser
        if "rate_limit" in changes.sent:
            limit = changes.rate_limit
            assert limit is None or isinstance(limit, dict)
            row.rate_limit = _clean_rate_limit(limit, await self._org(db, row.org_id))
            diff["rate_limit"] = row.rate_limit
        row.updated_at = utcnow()
        self._audit(db, actor, row, "api_key.updated", diff)
        await self._changed(db, row)
        return row

    async def revoke(self, db: AsyncSession, actor: Actor, row: ApiKey) -> None:
        now = utcnow()
        row.revoked_at = now
        row.updated_at = now
        self._audit(db, actor, row, "api_key.deleted", {})
        await self._changed(db, row)
        await _announce(db, row, "api_key.deleted")

    async def rotate(
        self, db: AsyncSession, actor: Actor, row: ApiKey, grace_seconds: int
    ) -> IssuedKey:
        """A new secret with the same settings; the old one works for `grace_seconds` more."""
        if row.revoked_at is not None:
            raise Conflict(
                f"Key {row.id} was already rotated or revoked; rotate its replacement instead."
            )
        if grace_seconds < 0 or grace_seconds > MAX_GRACE_SECONDS:
            raise ValidationFailed(
                "grace_seconds must be between 0 (revoke the old secret now) and "
                f"{MAX_GRACE_SECONDS} (30 days).",
                details=[{"loc": ["grace_seconds"], "msg": "out of range"}],
            )
        spec = KeySpec(
            name=row.name,
            permissions=list(row.permissions),
            mode=Mode(row.mode),
            expires_at=aware(row.expires_at),
            ip_allowlist=list(row.ip_allowlist or []),
            rate_limit=row.rate_limit,
            label=KeyLabel(row.label) if row.label else None,
            allow_browser=bool(row.allow_browser),
        )
        issued = await self._issue(
            db,
            actor,
            spec,
            frozenset(row.permissions),
            kind=KeyKind(row.kind),
            org_id=row.org_id,
            project_id=row.project_id,
            user_id=row.user_id,
            rotated_from=row.id,
        )
        row.revoked_at = utcnow() + timedelta(seconds=grace_seconds)
        row.updated_at = utcnow()
        await self._changed(db, row)
        return issued

    def reveal(self, db: AsyncSession, actor: Actor, row: ApiKey) -> str:
        secret = self.keyring.decrypt(row.secret_version, row.secret_sealed, row.id)
        self._audit(db, actor, row, "api_key.revealed", {})
        return secret

    @staticmethod
    async def _org(db: AsyncSession, org_id: int) -> Organization:
        org = await db.get(Organization, org_id)
        assert org is not None
        return org

    async def _changed(self, db: AsyncSession, row: ApiKey) -> None:
        # The change event reaches other processes through the feed; this process drops its
        # cache entry once the transaction has committed (see Runtime.transaction), so that no
        # request can re-cache the old row in between.
        await key_changed(db, row)

    @staticmethod
    def _audit(
        db: AsyncSession, actor: Actor, row: ApiKey, action: str, data: dict[str, Any]
    ) -> None:
        db.add(
            actor.audit_event(
                action, data, org_id=row.org_id, project_id=row.project_id, key_id=row.id
            )
        )


def _no_custom(names: list[str]) -> None:
    """User keys span projects; a project's own permissions belong to that project's keys."""
    custom = sorted({n for n in names if not is_builtin(n) and NAME.match(n)})
    if custom:
        raise ValidationFailed(
            f"{', '.join(custom)} is not a built-in permission; custom permissions belong to one "
            "project, so grant them to a project key of that project.",
            details=[
                {"loc": ["permissions"], "msg": "custom permission", "value": n} for n in custom
            ],
        )


def _check_browser(allow_browser: bool, mode: Mode) -> None:
    if allow_browser and mode != Mode.TEST:
        raise ValidationFailed(
            "Only sk_test_ keys can be marked for browser use: a live key in a web page is "
            "readable by anyone who opens it. Call keyplane from your backend with live keys.",
            details=[{"loc": ["body", "allow_browser"], "msg": "test keys only"}],
        )


async def _announce(db: AsyncSession, row: ApiKey, event: str) -> None:
    """The webhook event of a project key's change (masked: never the secret). User keys
    belong to no project and have no subscriptions to tell."""
    if row.project_id is None:
        return
    from keyplane.services import webhooks  # webhooks imports this module (Actor)

    await webhooks.enqueue(db, row.project_id, event, {"api_key": describe(row)}, row.mode)


def _gone(row: ApiKey) -> bool:
    revoked = aware(row.revoked_at)
    return revoked is not None and revoked <= utcnow()


async def reencrypt(db: AsyncSession, keyring: Keyring) -> int:
    """Move every stored key to the keyring's current secret version (new pepper for the
    lookup, new key-encryption key for the sealed secret). Returns how many were moved; after
    that the older versions can be dropped from KEYPLANE_SECRET_KEY."""
    current = keyring.current.version
    rows = (await db.scalars(select(ApiKey).where(ApiKey.secret_version != current))).all()
    for row in rows:
        secret = keyring.decrypt(row.secret_version, row.secret_sealed, row.id)
        row.secret_version, row.secret_sealed = keyring.encrypt(secret, row.id)
        row.lookup = keyring.lookup_hash(secret)
        await key_changed(db, row)
    return len(rows)
