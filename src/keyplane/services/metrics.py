"""Conversation metrics per day, week or month, counted in SQL (DESIGN §6).

Each count is one GROUP BY over a date-bucket expression; the expression differs by database
(SQLite's date modifiers, PostgreSQL's date_trunc in UTC) but both yield 'YYYY-MM-DD' of the
bucket's first day, so the buckets agree with `domain.metrics.buckets`."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyplane.adapters.sql.models import Conversation, Message
from keyplane.domain.keyformat import Mode
from keyplane.domain.metrics import GroupBy, buckets

_SQLITE_MODIFIERS = {
    GroupBy.DAY: (),
    GroupBy.WEEK: ("weekday 0", "-6 days"),  # the Sunday on or after, back to its Monday
    GroupBy.MONTH: ("start of month",),
}


def _bucket(column: Any, group_by: GroupBy, dialect: str) -> ColumnElement[str]:
    if dialect == "postgresql":
        utc = func.timezone("UTC", column)
        return func.to_char(func.date_trunc(group_by.value, utc), "YYYY-MM-DD")
    return func.date(column, *_SQLITE_MODIFIERS[group_by])


async def series(
    db: AsyncSession, project_id: int, mode: Mode, start: date, end: date, group_by: GroupBy
) -> list[dict[str, Any]]:
    dialect = db.get_bind().dialect.name
    since = datetime.combine(start, time.min, tzinfo=UTC)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    in_scope = (Conversation.project_id == project_id, Conversation.mode == mode)

    conversation_bucket = _bucket(Conversation.created_at, group_by, dialect).label("bucket")
    conversations = await db.execute(
        select(
            conversation_bucket,
            func.count(),
            func.sum(case((Conversation.status == "resolved", 1), else_=0)),
        )
        .where(*in_scope, Conversation.created_at >= since, Conversation.created_at < until)
        .group_by(conversation_bucket)
    )
    message_bucket = _bucket(Message.created_at, group_by, dialect).label("bucket")
    messages = await db.execute(
        select(
            message_bucket,
            func.count(),
            func.sum(case((Message.role == "assistant", 1), else_=0)),
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(*in_scope, Message.created_at >= since, Message.created_at < until)
        .group_by(message_bucket)
    )
    by_bucket: dict[str, dict[str, int]] = {
        day.isoformat(): {"conversations": 0, "messages": 0, "resolved": 0, "generated_answers": 0}
        for day in buckets(start, end, group_by)
    }
    for bucket, count, resolved in conversations.all():
        if bucket in by_bucket:
            by_bucket[bucket]["conversations"] = int(count)
            by_bucket[bucket]["resolved"] = int(resolved or 0)
    for bucket, count, generated in messages.all():
        if bucket in by_bucket:
            by_bucket[bucket]["messages"] = int(count)
            by_bucket[bucket]["generated_answers"] = int(generated or 0)
    return [{"date": day} | counts for day, counts in by_bucket.items()]
