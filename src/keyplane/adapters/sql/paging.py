"""Keyset pagination by id, the one way every list endpoint pages (`?limit=&cursor=`)."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


Row = TypeVar("Row", bound=_HasId)


async def keyset_page(
    db: AsyncSession,
    query: Select[Row],
    id_column: InstrumentedAttribute[Any],
    *,
    limit: int,
    after_id: int | None,
    newest_first: bool,
) -> tuple[list[Row], int | None]:
    """Up to `limit` rows of `query` past the cursor id, in id order (descending when
    `newest_first`), and the id to continue after, None at the end. One row more than asked is
    fetched to know whether another page follows, so no count query is needed."""
    if newest_first:
        query = query.order_by(id_column.desc())
        if after_id is not None:
            query = query.where(id_column < after_id)
    else:
        query = query.order_by(id_column)
        if after_id is not None:
            query = query.where(id_column > after_id)
    rows = list((await db.scalars(query.limit(limit + 1))).all())
    more = len(rows) > limit
    return rows[:limit], (rows[limit - 1].id if more else None)
