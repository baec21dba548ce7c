"""Permissions of an organization's own API (issue 10): names a project registers next to the
built-in catalog of DESIGN §3, so that its keys can carry them.

They follow the catalog's rules: `resource:action`, deny by default, granting closes over
declared implications (`invoices:write` ⇒ `invoices:read`), and removing one that a held one
needs is refused. Built-in names, and built-in resources, are reserved: `conversation:delete`
would read like a keyplane permission that keyplane does not enforce.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from keyplane.domain.errors import PermissionDependency, ValidationFailed
from keyplane.domain.permissions import Permission, parse_permissions, transitive

# 31 + 1 + 32 = 64, the longest permission name any request accepts.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}:[a-z][a-z0-9_]{0,31}$")
RESERVED_RESOURCES = frozenset(p.resource for p in Permission)
MAX_PER_PROJECT = 200


def is_builtin(name: str) -> bool:
    return name in Permission._value2member_map_


def check_name(name: str) -> str:
    """A name an organization may register, or the error saying why not."""
    if not NAME.match(name):
        raise ValidationFailed(
            f"{name[:64]!r} is not a permission name: use resource:action in lower case "
            "(letters, digits, '_'; resource up to 31 and action up to 32 characters), e.g. "
            "'invoices:read'.",
            details=[{"loc": ["name"], "msg": "not resource:action", "value": name[:64]}],
        )
    if is_builtin(name):
        raise ValidationFailed(
            f"{name} is a built-in keyplane permission and cannot be registered again; grant "
            "it to keys as it is.",
            details=[{"loc": ["name"], "msg": "built-in permission", "value": name}],
        )
    resource = name.split(":", 1)[0]
    if resource in RESERVED_RESOURCES:
        raise ValidationFailed(
            f"The resource {resource!r} belongs to keyplane's own catalog; name your API's "
            "resources differently, e.g. 'invoices:read'.",
            details=[{"loc": ["name"], "msg": "reserved resource", "value": name}],
        )
    return name


@dataclass(frozen=True)
class CustomCatalog:
    """The custom permissions of one project: name -> the names it directly implies."""

    implies: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.implies)

    def closure(self, names: Iterable[str]) -> frozenset[str]:
        return transitive(names, self.implies)

    def split(self, names: Iterable[str]) -> tuple[frozenset[Permission], frozenset[str]]:
        """User-supplied names as (built-in, custom), naming every unknown one at once."""
        names = list(names)
        custom = frozenset(n for n in names if n in self.implies)
        builtin = parse_permissions(n for n in names if n not in self.implies)
        return builtin, custom

    def apply_edit(self, current: frozenset[str], requested: frozenset[str]) -> frozenset[str]:
        """As `permissions.apply_edit`: grants close over implications, and removing what a
        remaining permission needs is refused with both named."""
        result = self.closure(requested)
        for removed in sorted(current - requested):
            needed_by = sorted(
                p for p in requested if removed in self.closure(self.implies.get(p, ()))
            )
            if needed_by:
                raise PermissionDependency(
                    f"Cannot remove {removed}: {', '.join(needed_by)} requires it. "
                    f"Remove {', '.join(needed_by)} as well, or keep {removed}.",
                    permission=removed,
                    required_by=needed_by,
                )
        return result


def default_implies(name: str, registered: Iterable[str]) -> list[str]:
    """The catalog's convention when a registration names no implications: any action other
    than `read` implies `<resource>:read` once that is registered (write ⇒ read)."""
    resource, action = name.split(":", 1)
    read = f"{resource}:read"
    return [read] if action != "read" and read in set(registered) else []
