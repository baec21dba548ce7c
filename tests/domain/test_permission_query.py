"""Unkey's permission query syntax and custom permission names (issue 10), pure domain."""

from __future__ import annotations

import pytest

from keyplane.domain.custom_permissions import CustomCatalog, check_name, default_implies
from keyplane.domain.errors import PermissionDependency, ValidationFailed
from keyplane.domain.permission_query import parse, single

HELD = frozenset({"invoices:read", "reports:read"})


@pytest.mark.parametrize(
    ("query", "allowed"),
    [
        ("invoices:read", True),
        ("invoices.read", True),  # Unkey's spelling
        ("invoices:write", False),
        ("invoices:read AND reports:read", True),
        ("invoices:read AND invoices:write", False),
        ("invoices:write OR reports:read", True),
        ("(invoices:write OR reports:read) AND invoices:read", True),
        ("invoices:write OR (reports:read AND admin:all)", False),
        ("a:b OR c:d AND invoices:read", False),  # AND binds tighter
    ],
)
def test_queries(query: str, allowed: bool) -> None:
    assert parse(query).allows(HELD) is allowed


@pytest.mark.parametrize("query", ["", "AND", "a:b AND", "(a:b", "a:b)", "a:b c:d", "(" * 30])
def test_malformed_queries_are_validation_errors(query: str) -> None:
    with pytest.raises(ValidationFailed):
        parse(query)


def test_the_missing_permission_is_named() -> None:
    assert parse("invoices:read AND invoices:write").missing(HELD) == "invoices:write"
    assert str(single("invoices.read")) == "invoices:read"


@pytest.mark.parametrize(
    "name", ["knowledge:read", "knowledge:delete", "api_key:admin", "Invoices:read", "x", "a:"]
)
def test_reserved_and_malformed_names(name: str) -> None:
    with pytest.raises(ValidationFailed):
        check_name(name)


def test_catalog_closure_and_edits() -> None:
    catalog = CustomCatalog(
        {
            "invoices:read": frozenset(),
            "invoices:write": frozenset({"invoices:read"}),
            "invoices:admin": frozenset({"invoices:write"}),
        }
    )
    assert catalog.closure({"invoices:admin"}) == {
        "invoices:admin",
        "invoices:write",
        "invoices:read",
    }
    builtin, custom = catalog.split(["project:read", "invoices:write"])
    assert (builtin, custom) == ({"project:read"}, {"invoices:write"})
    with pytest.raises(ValidationFailed):
        catalog.split(["reports:read"])
    current = catalog.closure({"invoices:admin"})
    with pytest.raises(PermissionDependency):
        catalog.apply_edit(current, frozenset({"invoices:admin", "invoices:write"}))
    assert catalog.apply_edit(current, frozenset({"invoices:read"})) == {"invoices:read"}
    assert default_implies("invoices:write", catalog.names) == ["invoices:read"]
    assert default_implies("invoices:read", catalog.names) == []
    assert default_implies("reports:write", catalog.names) == []
