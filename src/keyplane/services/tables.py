"""Data tables and their rows, always inside one project and one mode."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import DataTable, TableRow
from keyplane.adapters.sql.paging import keyset_page
from keyplane.adapters.sql.repositories import iso, utcnow
from keyplane.domain.errors import Conflict, NotFound, ValidationFailed
from keyplane.domain.keyformat import Mode
from keyplane.domain.tables import MAX_COLUMNS, ColumnType, check_row, parse_filter


def describe(table: DataTable) -> dict[str, Any]:
    return {
        "id": table.id,
        "name": table.name,
        "columns": list(table.columns),
        "created_at": iso(table.created_at),
    }


def describe_row(row: TableRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "table_id": row.table_id,
        "values": dict(row.values),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def _columns(table: DataTable) -> dict[str, ColumnType]:
    return {c["name"]: ColumnType(c["type"]) for c in table.columns}


async def create(
    db: AsyncSession, project_id: int, mode: Mode, name: str, columns: list[dict[str, str]]
) -> dict[str, Any]:
    names = [c["name"] for c in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationFailed(
            f"Column '{duplicates[0]}' appears more than once; column names must be unique.",
            details=[{"loc": ["body", "columns"], "msg": "duplicate column name"}],
        )
    if len(columns) > MAX_COLUMNS:
        raise ValidationFailed(f"A table has at most {MAX_COLUMNS} columns.")
    table = DataTable(
        project_id=project_id, mode=mode, name=name, columns=columns, created_at=utcnow()
    )
    db.add(table)
    try:
        await db.flush()
    except IntegrityError:
        raise Conflict(f"A table named '{name}' already exists in this project.") from None
    return describe(table)


async def page(
    db: AsyncSession, project_id: int, mode: Mode, *, limit: int, after_id: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    query = select(DataTable).where(DataTable.project_id == project_id, DataTable.mode == mode)
    tables, last = await keyset_page(
        db, query, DataTable.id, limit=limit, after_id=after_id, newest_first=False
    )
    return [describe(t) for t in tables], last


async def get_table(db: AsyncSession, project_id: int, mode: Mode, table_id: int) -> DataTable:
    table = await db.scalar(
        select(DataTable).where(
            DataTable.id == table_id, DataTable.project_id == project_id, DataTable.mode == mode
        )
    )
    if table is None:
        raise NotFound(f"No table {table_id} in project {project_id} ({mode} data).")
    return table


async def rows(
    db: AsyncSession,
    project_id: int,
    mode: Mode,
    table_id: int,
    *,
    limit: int,
    after_id: int | None,
    filter_text: str | None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Oldest first; the filter `column:value` is an equality test run in SQL."""
    table = await get_table(db, project_id, mode, table_id)
    query = select(TableRow).where(TableRow.table_id == table.id)
    if filter_text is not None:
        name, kind, value = parse_filter(_columns(table), filter_text)
        cell = TableRow.values[name]
        if kind is ColumnType.NUMBER:
            query = query.where(cell.as_float() == value)
        elif kind is ColumnType.BOOLEAN:
            query = query.where(cell.as_boolean() == value)
        else:
            query = query.where(cell.as_string() == value)
    found, last = await keyset_page(
        db, query, TableRow.id, limit=limit, after_id=after_id, newest_first=False
    )
    return [describe_row(r) for r in found], last


async def add_row(
    db: AsyncSession, project_id: int, mode: Mode, table_id: int, values: dict[str, Any]
) -> dict[str, Any]:
    table = await get_table(db, project_id, mode, table_id)
    now = utcnow()
    row = TableRow(
        table_id=table.id,
        values=check_row(_columns(table), values, partial=False),
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    await db.flush()
    return describe_row(row)


async def _row(
    db: AsyncSession, project_id: int, mode: Mode, table_id: int, row_id: int
) -> tuple[DataTable, TableRow]:
    table = await get_table(db, project_id, mode, table_id)
    row = await db.scalar(
        select(TableRow).where(TableRow.id == row_id, TableRow.table_id == table.id)
    )
    if row is None:
        raise NotFound(f"No row {row_id} in table {table_id}.")
    return table, row


async def update_row(
    db: AsyncSession,
    project_id: int,
    mode: Mode,
    table_id: int,
    row_id: int,
    values: dict[str, Any],
) -> dict[str, Any]:
    """Changes only the cells given; the others keep their values."""
    table, row = await _row(db, project_id, mode, table_id, row_id)
    row.values = dict(row.values) | check_row(_columns(table), values, partial=True)
    row.updated_at = utcnow()
    await db.flush()
    return describe_row(row)


async def delete_row(
    db: AsyncSession, project_id: int, mode: Mode, table_id: int, row_id: int
) -> None:
    _table, row = await _row(db, project_id, mode, table_id, row_id)
    await db.execute(delete(TableRow).where(TableRow.id == row.id))
