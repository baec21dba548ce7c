"""The closed permission catalog of DESIGN §3: `resource:action`, deny by default.

Project permissions can be held by roles and granted to keys. Organization permissions exist
for user roles only; keys may never hold them. `api_key:*` may be held by user keys only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TypeVar

from keyplane.domain.errors import (
    OrgPermissionNotAllowed,
    PermissionDependency,
    ValidationFailed,
)


class Permission(StrEnum):
    PROJECT_READ = "project:read"
    CONVERSATION_READ = "conversation:read"
    CONVERSATION_WRITE = "conversation:write"
    CONVERSATION_GENERATE = "conversation:generate"
    USERPOOL_READ = "userpool:read"
    USERPOOL_UPDATE = "userpool:update"
    KNOWLEDGE_READ = "knowledge:read"
    KNOWLEDGE_WRITE = "knowledge:write"
    TABLE_READ = "table:read"
    TABLE_WRITE = "table:write"
    FILE_READ = "file:read"
    FILE_WRITE = "file:write"
    LABEL_READ = "label:read"
    LABEL_UPSERT = "label:upsert"
    TOPIC_READ = "topic:read"
    METRIC_READ = "metric:read"
    DEPLOYMENT_READ = "deployment:read"
    DEPLOYMENT_UPDATE = "deployment:update"
    EXPORT_READ = "export:read"
    FULL_EXPORT_READ = "full_export:read"
    WEBHOOK_READ = "webhook:read"
    WEBHOOK_WRITE = "webhook:write"
    API_KEY_READ = "api_key:read"
    API_KEY_WRITE = "api_key:write"
    # Organization level: user roles only, never keys.
    ORG_READ = "org:read"
    ORG_WRITE = "org:write"
    BILLING_READ = "billing:read"
    BILLING_WRITE = "billing:write"
    MEMBER_READ = "member:read"
    MEMBER_WRITE = "member:write"

    @property
    def resource(self) -> str:
        return self.value.split(":", 1)[0]

    @property
    def action(self) -> str:
        return self.value.split(":", 1)[1]


P = Permission

_Name = TypeVar("_Name", bound=str)  # a permission name: built-in (the enum) or custom

# Direct implications; `closure` follows them transitively.
IMPLIES: dict[Permission, frozenset[Permission]] = {
    P.CONVERSATION_WRITE: frozenset({P.CONVERSATION_READ}),
    P.CONVERSATION_GENERATE: frozenset({P.CONVERSATION_READ}),
    P.USERPOOL_UPDATE: frozenset({P.USERPOOL_READ}),
    P.KNOWLEDGE_WRITE: frozenset({P.KNOWLEDGE_READ}),
    P.TABLE_WRITE: frozenset({P.TABLE_READ}),
    P.FILE_WRITE: frozenset({P.FILE_READ}),
    P.LABEL_UPSERT: frozenset({P.LABEL_READ}),
    P.DEPLOYMENT_UPDATE: frozenset({P.DEPLOYMENT_READ}),
    P.FULL_EXPORT_READ: frozenset({P.EXPORT_READ}),
    P.WEBHOOK_WRITE: frozenset({P.WEBHOOK_READ}),
    P.API_KEY_WRITE: frozenset({P.API_KEY_READ}),
    P.ORG_WRITE: frozenset({P.ORG_READ}),
    P.BILLING_WRITE: frozenset({P.BILLING_READ}),
    P.MEMBER_WRITE: frozenset({P.MEMBER_READ}),
}

ORG_PERMISSIONS = frozenset(p for p in Permission if p.resource in {"org", "billing", "member"})
PROJECT_PERMISSIONS = frozenset(Permission) - ORG_PERMISSIONS
USER_KEY_ONLY = frozenset({P.API_KEY_READ, P.API_KEY_WRITE})
PROJECT_KEY_PERMISSIONS = PROJECT_PERMISSIONS - USER_KEY_ONLY

DESCRIPTIONS: dict[Permission, str] = {
    P.PROJECT_READ: "View project settings and metadata",
    P.CONVERSATION_READ: "List and read conversations and their messages",
    P.CONVERSATION_WRITE: "Update conversations (status, labels) and add messages",
    P.CONVERSATION_GENERATE: "Create conversations and generate AI answers",
    P.USERPOOL_READ: "Read end-user profiles",
    P.USERPOOL_UPDATE: "Create and update end-user profiles",
    P.KNOWLEDGE_READ: "Read knowledge snippets and data providers",
    P.KNOWLEDGE_WRITE: "Create, update and sync knowledge snippets and data providers",
    P.TABLE_READ: "Read data tables and rows",
    P.TABLE_WRITE: "Create tables and change rows",
    P.FILE_READ: "List and download files",
    P.FILE_WRITE: "Upload and delete files",
    P.LABEL_READ: "List labels",
    P.LABEL_UPSERT: "Create and update labels",
    P.TOPIC_READ: "Read topics derived from conversations",
    P.METRIC_READ: "Read analytics metrics",
    P.DEPLOYMENT_READ: "List deployments",
    P.DEPLOYMENT_UPDATE: "Create deployments",
    P.EXPORT_READ: "Export conversations without personal data",
    P.FULL_EXPORT_READ: "Export everything, including end-user personal data",
    P.WEBHOOK_READ: "List webhook subscriptions and deliveries",
    P.WEBHOOK_WRITE: "Create, change and delete webhook subscriptions",
    P.API_KEY_READ: "List API keys (user keys only)",
    P.API_KEY_WRITE: "Create, edit, rotate and delete API keys (user keys only)",
    P.ORG_READ: "View organization settings",
    P.ORG_WRITE: "Change organization settings",
    P.BILLING_READ: "View billing",
    P.BILLING_WRITE: "Change plan and billing",
    P.MEMBER_READ: "List members",
    P.MEMBER_WRITE: "Invite, change and remove members",
}


def closure(permissions: Iterable[Permission]) -> frozenset[Permission]:
    """Every permission in `permissions` plus everything they imply, transitively."""
    return transitive(permissions, IMPLIES)


def transitive(
    names: Iterable[_Name], implies: Mapping[_Name, Iterable[_Name]]
) -> frozenset[_Name]:
    """`names` plus everything they imply through `implies`, transitively (built-in
    permissions and a project's custom ones follow the same rule)."""
    result: set[_Name] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name not in result:
            result.add(name)
            pending.extend(implies.get(name, ()))
    return frozenset(result)


def parse_permissions(names: Iterable[str]) -> frozenset[Permission]:
    """Turn user-supplied names into permissions, naming every unknown one at once."""
    known: set[Permission] = set()
    unknown: list[str] = []
    for name in names:
        try:
            known.add(Permission(name))
        except ValueError:
            unknown.append(name)
    if unknown:
        shown = ", ".join(repr(name[:64]) for name in unknown)
        raise ValidationFailed(
            f"Unknown permission {shown}; GET /v1/permissions lists the catalog.",
            details=[
                {"loc": ["permissions"], "msg": "unknown permission", "value": name[:64]}
                for name in unknown
            ],
        )
    return frozenset(known)


def check_grantable(permissions: Iterable[Permission], *, user_key: bool) -> None:
    """Reject what a key may never hold: organization permissions, and `api_key:*` on project
    keys."""
    requested = frozenset(permissions)
    org_level = sorted(requested & ORG_PERMISSIONS)
    if org_level:
        raise OrgPermissionNotAllowed(
            f"API keys cannot hold organization-level permissions ({', '.join(org_level)}); "
            "those operations need a signed-in user.",
            permissions=org_level,
        )
    if not user_key:
        key_admin = sorted(requested & USER_KEY_ONLY)
        if key_admin:
            raise OrgPermissionNotAllowed(
                f"Project keys cannot hold {', '.join(key_admin)}; create a user key "
                "(account-wide) to manage keys programmatically.",
                permissions=key_admin,
            )


def apply_edit(
    current: frozenset[Permission], requested: frozenset[Permission]
) -> frozenset[Permission]:
    """The permission set a key ends up with when an edit asks for `requested`.

    Newly granted permissions bring their dependencies along (granting `knowledge:write` adds
    `knowledge:read`). Removing a permission that a remaining one still needs is refused with a
    message naming both, rather than silently putting it back.
    """
    result = closure(requested)
    for removed in sorted(current - requested):
        needed_by = sorted(p for p in requested if removed in closure(IMPLIES.get(p, ())))
        if needed_by:
            raise PermissionDependency(
                f"Cannot remove {removed}: {', '.join(needed_by)} requires it. "
                f"Remove {', '.join(needed_by)} as well, or keep {removed}.",
                permission=str(removed),
                required_by=[str(p) for p in needed_by],
            )
    return result


def catalog() -> list[dict[str, object]]:
    """The public catalog served at GET /v1/permissions."""
    return [
        {
            "name": str(permission),
            "resource": permission.resource,
            "action": permission.action,
            "description": DESCRIPTIONS[permission],
            "implies": sorted(str(p) for p in closure(IMPLIES.get(permission, ()))),
            "level": "organization" if permission in ORG_PERMISSIONS else "project",
            "grantable_to": (
                []
                if permission in ORG_PERMISSIONS
                else ["user_key"]
                if permission in USER_KEY_ONLY
                else ["project_key", "user_key"]
            ),
        }
        for permission in Permission
    ]
