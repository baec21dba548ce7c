"""Which permissions a verification asks for: one name, or Unkey's query syntax
(`a AND (b OR c)`), so that a service calling `keys.verifyKey` keeps its permission checks.

Names are keyplane's `resource:action`; Unkey's `resource.action` spelling is read as the same
name, so that checks written for Unkey need no change.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass

from keyplane.domain.errors import ValidationFailed

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")
MAX_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class Query:
    """An operator ('AND'/'OR') over sub-queries, or a leaf name (op None)."""

    op: str | None
    name: str = ""
    parts: tuple[Query, ...] = ()

    def allows(self, held: Container[str]) -> bool:
        if self.op is None:
            return self.name in held
        if self.op == "AND":
            return all(p.allows(held) for p in self.parts)
        return any(p.allows(held) for p in self.parts)

    def names(self) -> list[str]:
        if self.op is None:
            return [self.name]
        return [n for p in self.parts for n in p.names()]

    def missing(self, held: Container[str]) -> str:
        """What to name in an insufficient_permissions error: the first missing name."""
        return next((n for n in self.names() if n not in held), str(self))

    def __str__(self) -> str:
        if self.op is None:
            return self.name
        return "(" + f" {self.op} ".join(str(p) for p in self.parts) + ")"


def single(name: str) -> Query:
    return Query(op=None, name=normalize(name))


def normalize(name: str) -> str:
    """`documents.read` (Unkey's spelling) -> `documents:read`."""
    if ":" not in name and name.count(".") == 1:
        return name.replace(".", ":")
    return name


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(
        f"Invalid permissions query: {message}. Write names joined by AND / OR, with "
        "parentheses, e.g. 'invoices:read AND (invoices:write OR admin:all)'.",
        details=[{"loc": ["permissions"], "msg": message}],
    )


def parse(text: str) -> Query:
    if len(text) > MAX_LENGTH:
        raise _invalid(f"longer than {MAX_LENGTH} characters")
    tokens: list[str] = _TOKEN.findall(text)
    if "".join(tokens) != "".join(text.split()):
        raise _invalid("unreadable characters")
    if not tokens:
        raise _invalid("empty")
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        token = tokens[position]
        position += 1
        return token

    def expression(depth: int) -> Query:
        if depth > 20:
            raise _invalid("nested too deeply")
        parts = [conjunction(depth)]
        while peek() == "OR":
            take()
            parts.append(conjunction(depth))
        return parts[0] if len(parts) == 1 else Query(op="OR", parts=tuple(parts))

    def conjunction(depth: int) -> Query:
        parts = [atom(depth)]
        while peek() == "AND":
            take()
            parts.append(atom(depth))
        return parts[0] if len(parts) == 1 else Query(op="AND", parts=tuple(parts))

    def atom(depth: int) -> Query:
        word = peek()
        if word is None:
            raise _invalid("ends where a permission name was expected")
        if word == "(":
            take()
            inner = expression(depth + 1)
            if peek() != ")":
                raise _invalid("a '(' is not closed")
            take()
            return inner
        if word in {")", "AND", "OR"}:
            raise _invalid(f"{word!r} where a permission name was expected")
        return single(take())

    query = expression(0)
    if position != len(tokens):
        raise _invalid(f"unexpected {tokens[position][:64]!r}")
    return query
