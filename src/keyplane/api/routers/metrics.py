from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AfterValidator

from keyplane.api.deps import ProjectId, RuntimeDep, require
from keyplane.api.platform_schemas import MetricSeries
from keyplane.api.schemas import errors_doc, storable
from keyplane.domain.metrics import GroupBy, check_range, parse_day
from keyplane.domain.permissions import Permission
from keyplane.services import metrics
from keyplane.services.auth import Principal

router = APIRouter(prefix="/v1/projects/{project_id}/metrics", tags=["metrics"])

DateText = Annotated[
    str,
    Query(min_length=1, max_length=40, description="YYYY-MM-DD or an ISO 8601 date-time (UTC)"),
    AfterValidator(storable),
]


@router.get("", response_model=MetricSeries, responses=errors_doc(401, 403))
async def get_metrics(
    project_id: ProjectId,
    rt: RuntimeDep,
    start_date: DateText,
    end_date: DateText,
    group_by: GroupBy = GroupBy.DAY,
    principal: Principal = require(Permission.METRIC_READ),
) -> dict[str, Any]:
    """Conversations, messages, resolved conversations and generated (assistant) answers per
    bucket, every bucket of the range included; both dates inclusive, in UTC. Conversations
    count in the bucket they started in."""
    start, end = parse_day("start_date", start_date), parse_day("end_date", end_date)
    check_range(start, end)
    async with rt.sessions() as db:
        data = await metrics.series(db, project_id, principal.mode, start, end, group_by)
    return {"data": data}
