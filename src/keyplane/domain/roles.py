"""Built-in roles (DESIGN §1). A user's permissions on a project are the union of what their
organization role grants on every project and what their project role(s) grant on that one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from keyplane.domain.permissions import (
    ORG_PERMISSIONS,
    PROJECT_PERMISSIONS,
    Permission,
    closure,
)

P = Permission


class OrgRole(StrEnum):
    OWNER = "o_owner"
    ADMIN = "o_admin"
    BILLING = "o_billing"
    MEMBER = "o_member"
    VIEWER = "o_viewer"


class ProjectRole(StrEnum):
    OWNER = "p_owner"
    CONTRIBUTOR = "p_contributor"
    MEMBER = "p_member"
    VIEWER = "p_viewer"


READ_ONLY = frozenset(
    {
        P.PROJECT_READ,
        P.CONVERSATION_READ,
        P.USERPOOL_READ,
        P.KNOWLEDGE_READ,
        P.TABLE_READ,
        P.FILE_READ,
        P.LABEL_READ,
        P.TOPIC_READ,
        P.METRIC_READ,
        P.DEPLOYMENT_READ,
        P.WEBHOOK_READ,
    }
)

ORG_ROLE_PERMISSIONS: dict[OrgRole, frozenset[Permission]] = {
    OrgRole.OWNER: frozenset(Permission),
    OrgRole.ADMIN: PROJECT_PERMISSIONS | closure({P.ORG_WRITE, P.MEMBER_WRITE, P.BILLING_READ}),
    OrgRole.BILLING: closure({P.ORG_READ, P.BILLING_WRITE}),
    OrgRole.MEMBER: frozenset({P.ORG_READ}),
    OrgRole.VIEWER: READ_ONLY | {P.ORG_READ, P.MEMBER_READ},
}

PROJECT_ROLE_PERMISSIONS: dict[ProjectRole, frozenset[Permission]] = {
    ProjectRole.OWNER: PROJECT_PERMISSIONS,
    ProjectRole.CONTRIBUTOR: PROJECT_PERMISSIONS - {P.API_KEY_WRITE, P.FULL_EXPORT_READ},
    ProjectRole.MEMBER: READ_ONLY
    | closure({P.CONVERSATION_WRITE, P.CONVERSATION_GENERATE, P.USERPOOL_UPDATE, P.LABEL_UPSERT}),
    ProjectRole.VIEWER: READ_ONLY,
}

BUILTIN_ROLE_PREFIXES = ("o_", "p_")


def project_permissions(
    org_role: OrgRole | None,
    project_roles: Iterable[str],
    custom_roles: Mapping[str, frozenset[Permission]],
) -> frozenset[Permission]:
    """Effective permissions of one user on one project.

    `project_roles` may name built-in project roles or custom roles defined in `custom_roles`
    (a name → permissions mapping for the project's organization). Unknown names grant nothing:
    a deleted custom role must not keep granting access.
    """
    granted: set[Permission] = set()
    if org_role is not None:
        granted |= ORG_ROLE_PERMISSIONS[org_role] - ORG_PERMISSIONS
    for name in project_roles:
        if name in PROJECT_ROLE_PERMISSIONS:
            granted |= PROJECT_ROLE_PERMISSIONS[ProjectRole(name)]
        else:
            granted |= custom_roles.get(name, frozenset())
    return closure(granted) - ORG_PERMISSIONS
