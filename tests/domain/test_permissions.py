"""Properties of the permission catalog (DESIGN §3) and of role resolution (DESIGN §1)."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from keyplane.domain.errors import (
    OrgPermissionNotAllowed,
    PermissionDependency,
    ValidationFailed,
)
from keyplane.domain.permissions import (
    IMPLIES,
    ORG_PERMISSIONS,
    PROJECT_KEY_PERMISSIONS,
    PROJECT_PERMISSIONS,
    USER_KEY_ONLY,
    Permission,
    apply_edit,
    catalog,
    check_grantable,
    closure,
    parse_permissions,
)
from keyplane.domain.roles import (
    ORG_ROLE_PERMISSIONS,
    PROJECT_ROLE_PERMISSIONS,
    READ_ONLY,
    OrgRole,
    ProjectRole,
    project_permissions,
)

# DESIGN §3, written out as the contract: every permission of the table, and each direct
# implication ("write, generate ⇒ read", ...).
DESIGN_PROJECT_PERMISSIONS = {
    "project:read",
    "conversation:read",
    "conversation:write",
    "conversation:generate",
    "userpool:read",
    "userpool:update",
    "knowledge:read",
    "knowledge:write",
    "table:read",
    "table:write",
    "file:read",
    "file:write",
    "label:read",
    "label:upsert",
    "topic:read",
    "metric:read",
    "deployment:read",
    "deployment:update",
    "export:read",
    "full_export:read",
    "webhook:read",
    "webhook:write",
    "api_key:read",
    "api_key:write",
}
DESIGN_IMPLIES = {
    "conversation:write": {"conversation:read"},
    "conversation:generate": {"conversation:read"},
    "userpool:update": {"userpool:read"},
    "knowledge:write": {"knowledge:read"},
    "table:write": {"table:read"},
    "file:write": {"file:read"},
    "label:upsert": {"label:read"},
    "deployment:update": {"deployment:read"},
    "full_export:read": {"export:read"},
    "webhook:write": {"webhook:read"},
    "api_key:write": {"api_key:read"},
}

P = Permission
ALL = sorted(Permission)
perms = st.frozensets(st.sampled_from(ALL))
project_perms = st.frozensets(st.sampled_from(sorted(PROJECT_PERMISSIONS)))
key_perms = st.frozensets(st.sampled_from(sorted(PROJECT_KEY_PERMISSIONS)))


def fixpoint(permissions: Iterable[Permission]) -> frozenset[Permission]:
    """The closure computed naively, as a reference: add implications until nothing changes."""
    result = set(permissions)
    while True:
        implied = {q for p in result for q in IMPLIES.get(p, ())}
        if implied <= result:
            return frozenset(result)
        result |= implied


def is_closed(permissions: frozenset[Permission]) -> bool:
    return all(IMPLIES.get(p, frozenset()) <= permissions for p in permissions)


# --- the catalog is the one DESIGN §3 documents --------------------------------------------------
def test_project_permissions_are_exactly_the_design_table() -> None:
    assert {str(p) for p in PROJECT_PERMISSIONS} == DESIGN_PROJECT_PERMISSIONS
    assert {str(p) for p in USER_KEY_ONLY} == {"api_key:read", "api_key:write"}
    assert {p.resource for p in ORG_PERMISSIONS} == {"org", "billing", "member"}
    assert frozenset(Permission) == PROJECT_PERMISSIONS | ORG_PERMISSIONS
    assert not PROJECT_PERMISSIONS & ORG_PERMISSIONS


def test_project_implications_are_exactly_the_design_table() -> None:
    project_implies = {
        str(p): {str(q) for q in implied}
        for p, implied in IMPLIES.items()
        if p in PROJECT_PERMISSIONS
    }
    assert project_implies == DESIGN_IMPLIES


def test_implications_never_cross_levels() -> None:
    for permission, implied in IMPLIES.items():
        assert (permission in ORG_PERMISSIONS) == bool(implied & ORG_PERMISSIONS), permission
        assert all(
            q.resource == permission.resource or permission.resource == "full_export"
            for q in implied
        )


def test_catalog_lists_every_permission_once_with_its_closure() -> None:
    entries = catalog()
    names = [entry["name"] for entry in entries]
    assert sorted(names) == sorted(str(p) for p in Permission)
    assert len(names) == len(set(names))
    for entry in entries:
        permission = Permission(str(entry["name"]))
        assert entry["implies"] == sorted(str(p) for p in closure({permission}) - {permission})
        assert f"{entry['resource']}:{entry['action']}" == entry["name"]
        assert isinstance(entry["description"], str)
        assert entry["description"]
        if permission in ORG_PERMISSIONS:
            assert entry["level"] == "organization"
            assert entry["grantable_to"] == []
        elif permission in USER_KEY_ONLY:
            assert entry["level"] == "project"
            assert entry["grantable_to"] == ["user_key"]
        else:
            assert entry["level"] == "project"
            assert entry["grantable_to"] == ["project_key", "user_key"]


def test_catalog_examples_from_the_design() -> None:
    by_name = {entry["name"]: entry for entry in catalog()}
    assert by_name["knowledge:write"]["implies"] == ["knowledge:read"]
    assert by_name["full_export:read"]["implies"] == ["export:read"]
    assert by_name["conversation:generate"]["implies"] == ["conversation:read"]
    assert by_name["project:read"]["implies"] == []


# --- closure -------------------------------------------------------------------------------------
@given(perms)
def test_closure_contains_its_input_and_is_closed(permissions: frozenset[Permission]) -> None:
    closed = closure(permissions)
    assert permissions <= closed
    assert is_closed(closed)
    assert closed == fixpoint(permissions)


@given(perms)
def test_closure_is_idempotent(permissions: frozenset[Permission]) -> None:
    assert closure(closure(permissions)) == closure(permissions)


@given(perms, perms)
def test_closure_is_monotone(a: frozenset[Permission], b: frozenset[Permission]) -> None:
    assert closure(a) <= closure(a | b)


@given(perms, perms)
def test_closure_distributes_over_union(a: frozenset[Permission], b: frozenset[Permission]) -> None:
    assert closure(a | b) == closure(a) | closure(b)


@given(perms)
def test_closure_is_the_smallest_closed_superset(permissions: frozenset[Permission]) -> None:
    closed = closure(permissions)
    for extra in closed - permissions:
        # Every added permission is implied by something in the input.
        assert any(extra in closure(IMPLIES.get(p, ())) for p in permissions)


@given(st.lists(st.sampled_from(ALL)))
def test_closure_accepts_any_iterable_with_duplicates(permissions: list[Permission]) -> None:
    assert closure(iter(permissions)) == closure(frozenset(permissions))


def test_closure_examples() -> None:
    assert closure({P.KNOWLEDGE_WRITE}) == {P.KNOWLEDGE_WRITE, P.KNOWLEDGE_READ}
    assert closure({P.CONVERSATION_WRITE, P.CONVERSATION_GENERATE}) == {
        P.CONVERSATION_WRITE,
        P.CONVERSATION_GENERATE,
        P.CONVERSATION_READ,
    }
    assert closure(()) == frozenset()
    assert closure({P.PROJECT_READ}) == {P.PROJECT_READ}


# --- apply_edit ----------------------------------------------------------------------------------
def violations(
    current: frozenset[Permission], requested: frozenset[Permission]
) -> dict[Permission, list[Permission]]:
    """Removed permission → the kept permissions that need it (reference implementation)."""
    found: dict[Permission, list[Permission]] = {}
    for removed in current - requested:
        needed_by = sorted(p for p in requested if removed in fixpoint(IMPLIES.get(p, ())))
        if needed_by:
            found[removed] = needed_by
    return found


@given(key_perms, key_perms)
def test_apply_edit_grants_the_closure_or_names_the_dependency(
    current: frozenset[Permission], requested: frozenset[Permission]
) -> None:
    expected = violations(current, requested)
    if not expected:
        assert apply_edit(current, requested) == closure(requested)
        return
    with pytest.raises(PermissionDependency) as info:
        apply_edit(current, requested)
    removed = Permission(info.value.extra["permission"])
    assert removed in expected
    assert info.value.extra["required_by"] == [str(p) for p in expected[removed]]
    assert str(removed) in info.value.message
    for needer in expected[removed]:
        assert str(needer) in info.value.message


@given(key_perms)
def test_apply_edit_from_nothing_closes_over_dependencies(
    requested: frozenset[Permission],
) -> None:
    granted = apply_edit(frozenset(), requested)
    assert granted == closure(requested)
    assert is_closed(granted)


@given(key_perms)
def test_resubmitting_the_current_closed_set_changes_nothing(
    current: frozenset[Permission],
) -> None:
    closed = closure(current)
    assert apply_edit(closed, closed) == closed


@given(key_perms)
def test_removing_everything_is_always_allowed(current: frozenset[Permission]) -> None:
    assert apply_edit(closure(current), frozenset()) == frozenset()


@given(st.sampled_from(sorted(IMPLIES.items())))
def test_removing_only_the_implied_permission_is_refused_naming_both(
    pair: tuple[Permission, frozenset[Permission]],
) -> None:
    permission, implied = pair
    current = closure({permission})
    for needed in implied:
        with pytest.raises(PermissionDependency) as info:
            apply_edit(current, current - {needed})
        assert info.value.code == "permission_dependency"
        assert f"Cannot remove {needed}: {permission} requires it" in info.value.message
        # Removing both works.
        assert apply_edit(current, current - {needed, permission}) == closure(
            current - {needed, permission}
        )


def test_apply_edit_example_from_the_design() -> None:
    current = frozenset({P.KNOWLEDGE_WRITE, P.KNOWLEDGE_READ, P.PROJECT_READ})
    with pytest.raises(PermissionDependency, match="knowledge:write"):
        apply_edit(current, frozenset({P.KNOWLEDGE_WRITE, P.PROJECT_READ}))
    assert apply_edit(current, frozenset({P.PROJECT_READ})) == {P.PROJECT_READ}
    # Granting write where read was never held adds read instead of refusing.
    assert apply_edit(frozenset({P.PROJECT_READ}), frozenset({P.KNOWLEDGE_WRITE})) == {
        P.KNOWLEDGE_WRITE,
        P.KNOWLEDGE_READ,
    }


# --- check_grantable -----------------------------------------------------------------------------
@given(perms, st.sampled_from(sorted(ORG_PERMISSIONS)), st.booleans())
def test_org_permissions_are_never_grantable(
    others: frozenset[Permission], org_permission: Permission, user_key: bool
) -> None:
    requested = others | {org_permission}
    with pytest.raises(OrgPermissionNotAllowed) as info:
        check_grantable(requested, user_key=user_key)
    assert info.value.code == "org_permission_not_allowed"
    named = sorted(requested & ORG_PERMISSIONS)
    assert info.value.extra["permissions"] == named
    for permission in named:
        assert str(permission) in info.value.message


@given(key_perms, st.sampled_from(sorted(USER_KEY_ONLY)))
def test_api_key_permissions_are_for_user_keys_only(
    others: frozenset[Permission], key_admin: Permission
) -> None:
    requested = others | {key_admin}
    with pytest.raises(OrgPermissionNotAllowed) as info:
        check_grantable(requested, user_key=False)
    assert str(key_admin) in info.value.message
    assert "user key" in info.value.message
    check_grantable(requested, user_key=True)


@given(key_perms, st.booleans())
def test_project_key_permissions_are_grantable_to_both_kinds(
    requested: frozenset[Permission], user_key: bool
) -> None:
    check_grantable(requested, user_key=user_key)
    check_grantable(iter(sorted(requested)), user_key=user_key)


# --- parse_permissions ---------------------------------------------------------------------------
unknown_names = st.text(min_size=1, max_size=80).filter(lambda s: s not in set(Permission))


@given(st.lists(st.sampled_from([str(p) for p in ALL])))
def test_known_names_parse(names: list[str]) -> None:
    assert parse_permissions(names) == {Permission(n) for n in names}


@given(
    st.lists(st.sampled_from([str(p) for p in ALL])),
    st.lists(unknown_names, min_size=1, max_size=5),
    st.randoms(use_true_random=False),
)
def test_unknown_names_are_all_listed(
    known: list[str], unknown: list[str], rnd: random.Random
) -> None:
    names = known + unknown
    rnd.shuffle(names)
    with pytest.raises(ValidationFailed) as info:
        parse_permissions(names)
    assert info.value.code == "validation_error"
    details = info.value.extra["details"]
    expected = [n for n in names if n in unknown]
    assert [d["value"] for d in details] == [n[:64] for n in expected]
    assert all(d["loc"] == ["permissions"] for d in details)
    for name in expected:
        assert repr(name[:64]) in info.value.message
    assert "/v1/permissions" in info.value.message


def test_parse_permissions_examples() -> None:
    with pytest.raises(ValidationFailed, match=r"'knowledge:admin'.*'Project:Read'"):
        parse_permissions(["project:read", "knowledge:admin", "Project:Read"])
    assert parse_permissions([]) == frozenset()
    long_name = "x" * 10_000
    with pytest.raises(ValidationFailed) as info:
        parse_permissions([long_name])
    assert len(info.value.message) < 200


# --- roles ---------------------------------------------------------------------------------------
org_roles = st.none() | st.sampled_from(list(OrgRole))
role_names = st.sampled_from([*list(ProjectRole), "custom_a", "custom_b", "deleted", "o_owner"])
custom_maps = st.dictionaries(st.sampled_from(["custom_a", "custom_b", "custom_c"]), perms)


@given(org_roles, st.lists(role_names, max_size=4), custom_maps)
def test_project_permissions_never_include_org_permissions(
    org_role: OrgRole | None,
    roles: list[str],
    custom: dict[str, frozenset[Permission]],
) -> None:
    granted = project_permissions(org_role, roles, custom)
    assert not granted & ORG_PERMISSIONS
    assert granted <= PROJECT_PERMISSIONS
    assert is_closed(granted)


@given(org_roles, st.lists(role_names, max_size=4), custom_maps)
def test_project_permissions_are_the_union_of_each_grant(
    org_role: OrgRole | None,
    roles: list[str],
    custom: dict[str, frozenset[Permission]],
) -> None:
    together = project_permissions(org_role, roles, custom)
    parts = project_permissions(org_role, [], custom)
    for role in roles:
        parts |= project_permissions(None, [role], custom)
    assert together == parts


@given(org_roles, st.lists(role_names, max_size=4), custom_maps, role_names)
def test_more_roles_never_grant_less(
    org_role: OrgRole | None,
    roles: list[str],
    custom: dict[str, frozenset[Permission]],
    extra: str,
) -> None:
    assert project_permissions(org_role, roles, custom) <= project_permissions(
        org_role, [*roles, extra], custom
    )


@given(custom_maps, st.text(min_size=1, max_size=20))
def test_unknown_custom_role_grants_nothing(
    custom: dict[str, frozenset[Permission]], name: str
) -> None:
    assume(name not in custom and name not in set(ProjectRole))
    assert project_permissions(None, [name], custom) == frozenset()


@given(perms)
def test_custom_role_grants_its_project_permissions_closed(
    permissions: frozenset[Permission],
) -> None:
    granted = project_permissions(None, ["support"], {"support": permissions})
    assert granted == closure(permissions) - ORG_PERMISSIONS


def test_deleted_custom_role_stops_granting() -> None:
    custom = {"support": frozenset({P.CONVERSATION_WRITE})}
    assert project_permissions(None, ["support"], custom) == {
        P.CONVERSATION_WRITE,
        P.CONVERSATION_READ,
    }
    assert project_permissions(None, ["support"], {}) == frozenset()


def test_builtin_roles() -> None:
    assert project_permissions(OrgRole.OWNER, [], {}) == PROJECT_PERMISSIONS
    assert project_permissions(OrgRole.ADMIN, [], {}) == PROJECT_PERMISSIONS
    assert project_permissions(OrgRole.MEMBER, [], {}) == frozenset()
    assert project_permissions(OrgRole.BILLING, [], {}) == frozenset()
    assert project_permissions(OrgRole.VIEWER, [], {}) == READ_ONLY
    assert project_permissions(None, [ProjectRole.VIEWER], {}) == READ_ONLY
    assert project_permissions(None, [ProjectRole.OWNER], {}) == PROJECT_PERMISSIONS
    contributor = project_permissions(None, [ProjectRole.CONTRIBUTOR], {})
    assert P.API_KEY_WRITE not in contributor
    assert P.FULL_EXPORT_READ not in contributor
    assert P.KNOWLEDGE_WRITE in contributor
    member = project_permissions(OrgRole.MEMBER, [ProjectRole.MEMBER], {})
    assert P.CONVERSATION_GENERATE in member
    assert P.KNOWLEDGE_WRITE not in member
    assert P.API_KEY_READ not in member
    # Read-only roles hold no write-like permission.
    assert all(p.action == "read" for p in READ_ONLY)


def test_role_tables_cover_every_role() -> None:
    assert set(ORG_ROLE_PERMISSIONS) == set(OrgRole)
    assert set(PROJECT_ROLE_PERMISSIONS) == set(ProjectRole)
    assert all(not grant & ORG_PERMISSIONS for grant in PROJECT_ROLE_PERMISSIONS.values())
