"""Bodies of the label and topic endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from keyplane.api.schemas import Storable, Strict


class LabelUpsert(Strict):
    description: Annotated[str, StringConstraints(max_length=500), Storable] | None = None


class LabelOut(BaseModel):
    id: int
    name: str = Field(description="The spelling the label was first created with")
    description: str | None
    created_at: datetime
    updated_at: datetime


class LabelPage(BaseModel):
    data: list[LabelOut]
    next_cursor: str | None


class TopicOut(BaseModel):
    name: str
    kind: Literal["label", "term"] = Field(
        description="label: a label on conversations; term: a word recurring in opening messages"
    )
    conversations: int
    resolved: int
    unresolved: int
    conversation_ids: list[int] = Field(description="A few of the conversations, newest first")


class TopicList(BaseModel):
    data: list[TopicOut]
    next_cursor: None = Field(default=None, description="Topics come on one page")
