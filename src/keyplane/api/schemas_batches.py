"""Bodies of the batch endpoints (issue 11): up to `MAX_ITEMS` items per call."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from keyplane.api.platform_schemas import JsonObject
from keyplane.api.schemas import Strict
from keyplane.api.schemas_knowledge import Content, Title, WebUrl
from keyplane.api.schemas_users import EndUserUpsert, ExternalId
from keyplane.services.batches import MAX_ITEMS

ItemId = Annotated[int, Field(ge=1, le=2**63 - 1)]


def _at_most(value: Any) -> Any:
    # Checked before any item is: an oversized batch is refused whole, naming the limit.
    if isinstance(value, list) and len(value) > MAX_ITEMS:
        raise ValueError(
            f"a batch holds at most {MAX_ITEMS} items and this one has {len(value)}; split it "
            "into several calls"
        )
    return value


class UserItem(EndUserUpsert):
    external_id: ExternalId


class SnippetItem(Strict):
    id: ItemId | None = Field(default=None, description="Update this snippet")
    title: Title
    content: Content
    url: WebUrl | None = Field(
        default=None, description="Without an id, the hand-written snippet with this url is updated"
    )


class RowItem(Strict):
    id: ItemId | None = Field(default=None, description="Update this row (the cells given)")
    values: JsonObject


class UserBatch(Strict):
    items: Annotated[
        list[UserItem], BeforeValidator(_at_most), Field(min_length=1, max_length=MAX_ITEMS)
    ]


class SnippetBatch(Strict):
    items: Annotated[
        list[SnippetItem], BeforeValidator(_at_most), Field(min_length=1, max_length=MAX_ITEMS)
    ]


class RowBatch(Strict):
    items: Annotated[
        list[RowItem], BeforeValidator(_at_most), Field(min_length=1, max_length=MAX_ITEMS)
    ]


class BatchItemResult(BaseModel):
    index: int = Field(description="The item's position in the request")
    status: Literal["created", "updated"]
    id: int | None = None
    external_id: str | None = None


class BatchResult(BaseModel):
    data: list[BatchItemResult]
    created: int
    updated: int
