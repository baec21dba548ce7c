"""Typed results. Each model keeps the server's whole object in `.raw`, so fields added to
the API later are reachable before the SDK names them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
M = TypeVar("M", bound="Model")


@dataclass
class Model:
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls: type[M], data: dict[str, Any]) -> M:
        names = {f.name for f in dataclasses.fields(cls)} - {"raw"}
        return cls(raw=data, **{k: v for k, v in data.items() if k in names})

    def __getitem__(self, name: str) -> Any:
        """Dictionary-style access to any field, as the guide's examples use."""
        return self.raw[name]


@dataclass
class Page(Generic[T]):
    data: list[T]
    next_cursor: str | None

    @staticmethod
    def parse(body: dict[str, Any], item: Callable[[dict[str, Any]], T]) -> Page[T]:
        cursor = body.get("next_cursor")
        return Page([item(d) for d in body.get("data", [])], str(cursor) if cursor else None)


@dataclass
class Project(Model):
    id: int = 0
    org_id: int = 0
    name: str = ""
    mode: str = "live"
    created_at: str | None = None


@dataclass
class Message(Model):
    id: int = 0
    role: str = ""
    content: str = ""
    conversation_id: int | None = None
    created_at: str | None = None


@dataclass
class Conversation(Model):
    id: int = 0
    user_id: str = ""
    status: str = "unresolved"
    labels: list[str] = field(default_factory=list)
    project_id: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    messages: list[Message] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Conversation:
        made = super().from_json(data)
        made.messages = [Message.from_json(m) for m in data.get("messages") or []]
        return made


@dataclass
class Source(Model):
    snippet_id: int | None = None
    title: str | None = None
    url: str | None = None
    score: float = 0.0


@dataclass
class GeneratedResponse(Model):
    message: Message = field(default_factory=Message)
    sources: list[Source] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GeneratedResponse:
        return cls(
            raw=data,
            message=Message.from_json(data.get("message") or {}),
            sources=[Source.from_json(s) for s in data.get("sources") or []],
        )


@dataclass
class EndUser(Model):
    external_id: str = ""
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    locale: str | None = None
    external_attributes: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None


@dataclass
class Snippet(Model):
    id: int = 0
    title: str | None = None
    content: str | None = None
    url: str | None = None
    data_provider_id: int | None = None  # set when a data provider's sync made it
    source: str | None = None  # the file or URL of that data provider
    created_at: str | None = None
    updated_at: str | None = None


@dataclass
class SyncStatus(Model):
    """A data provider's latest sync. `status`: idle (never synced), pending, running,
    succeeded or failed."""

    status: str = "idle"
    snippets_created: int = 0
    snippets_updated: int = 0
    snippets_removed: int = 0
    last_error: str | None = None
    requested_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def done(self) -> bool:
        """True once no sync is waiting or running (idle, succeeded or failed)."""
        return self.status not in ("pending", "running")


@dataclass
class DataProvider(Model):
    id: int = 0
    name: str = ""
    type: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    sync: SyncStatus = field(default_factory=SyncStatus)
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DataProvider:
        made = super().from_json(data)
        made.sync = SyncStatus.from_json(data.get("sync") or {})
        return made

    @property
    def status(self) -> str:
        """The latest sync's status (same as `.sync.status`)."""
        return self.sync.status


@dataclass
class Column(Model):
    name: str = ""
    type: str = "text"


@dataclass
class Table(Model):
    id: int = 0
    name: str = ""
    columns: list[Column] = field(default_factory=list)
    created_at: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Table:
        made = super().from_json(data)
        made.columns = [Column.from_json(c) for c in data.get("columns") or []]
        return made


@dataclass
class Row(Model):
    id: int = 0
    table_id: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None


@dataclass
class File(Model):
    id: int = 0
    filename: str = ""
    content_type: str = ""
    size: int = 0
    sha256: str = ""
    created_at: str | None = None


@dataclass
class Label(Model):
    id: int = 0
    name: str = ""  # the spelling the label was first created with
    description: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


@dataclass
class Topic(Model):
    """What conversations are about: a label on them (kind "label") or a word recurring in
    their opening messages (kind "term"), with how many conversations."""

    name: str = ""
    kind: str = ""
    conversations: int = 0
    resolved: int = 0
    unresolved: int = 0
    conversation_ids: list[int] = field(default_factory=list)


@dataclass
class MetricPoint(Model):
    date: str = ""
    conversations: int = 0
    messages: int = 0
    resolved: int = 0
    generated_answers: int = 0


@dataclass
class Metrics(Model):
    data: list[MetricPoint] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metrics:
        points = cast(list[dict[str, Any]], data.get("data") or [])
        return cls(raw=data, data=[MetricPoint.from_json(p) for p in points])


@dataclass
class Deployment(Model):
    id: int = 0
    channel: str = ""
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "active"
    created_at: str | None = None
    updated_at: str | None = None


@dataclass
class BatchItemResult(Model):
    index: int = 0
    status: str = ""  # created | updated
    id: int | None = None
    external_id: str | None = None


@dataclass
class BatchResult(Model):
    """What a batch upsert did, item by item in request order (`data[i].index == i`)."""

    data: list[BatchItemResult] = field(default_factory=list)
    created: int = 0
    updated: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchResult:
        items = cast(list[dict[str, Any]], data.get("data") or [])
        return cls(
            raw=data,
            data=[BatchItemResult.from_json(i) for i in items],
            created=int(data.get("created") or 0),
            updated=int(data.get("updated") or 0),
        )

    @classmethod
    def merge(cls, parts: list[BatchResult]) -> BatchResult:
        """Results of several calls (a batch split into chunks) as one, indexes continued."""
        merged = cls(raw={"data": []})
        offset = 0
        for part in parts:
            for item in part.data:
                shifted = dataclasses.replace(item, index=item.index + offset)
                shifted.raw = item.raw | {"index": shifted.index}
                merged.data.append(shifted)
                merged.raw["data"].append(shifted.raw)
            offset += len(part.data)
            merged.created += part.created
            merged.updated += part.updated
        merged.raw |= {"created": merged.created, "updated": merged.updated}
        return merged


@dataclass
class Webhook(Model):
    id: int = 0
    project_id: int = 0
    mode: str = "live"
    url: str = ""
    events: list[str] = field(default_factory=list)
    description: str | None = None
    enabled: bool = True
    disabled_at: str | None = None
    disabled_reason: str | None = None
    created_at: str | None = None
    created_by: int | None = None
    updated_at: str | None = None
    last_delivered_at: str | None = None  # when a delivery last succeeded; None: never
    secret: str | None = None  # only when just created: store it, it is not shown again


@dataclass
class WebhookDelivery(Model):
    id: int = 0
    webhook_id: int = 0
    event: str = ""
    status: str = ""  # pending | delivered | failed
    attempts: int = 0
    next_attempt_at: str | None = None
    status_code: int | None = None
    last_error: str | None = None
    created_at: str | None = None
    delivered_at: str | None = None
    replay_of: int | None = None
