"""Bodies of the knowledge endpoints: snippets and data providers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from keyplane.api.schemas import Name, Storable, Strict

Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), Storable
]
Content = Annotated[str, StringConstraints(min_length=1, max_length=100_000), Storable]


def web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (they would be shown to everyone)")
    if any(c.isspace() for c in value):
        raise ValueError("must not contain whitespace")
    return value


WebUrl = Annotated[
    str, StringConstraints(min_length=1, max_length=2000), Storable, AfterValidator(web_url)
]


class SnippetCreate(Strict):
    title: Title
    content: Content
    url: WebUrl | None = None


class SnippetUpdate(Strict):
    title: Title | None = None
    content: Content | None = None
    url: WebUrl | None = Field(default=None, description="null removes the URL")

    @model_validator(mode="after")
    def _required_stay_set(self) -> SnippetUpdate:
        for name in ("title", "content"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null; leave it out to keep it")
        return self


class SnippetOut(BaseModel):
    id: int
    title: str
    content: str
    url: str | None
    data_provider_id: int | None = Field(description="Set when a data provider's sync made it")
    source: str | None = Field(description="The file or URL of its data provider")
    created_at: datetime
    updated_at: datetime


class SnippetPage(BaseModel):
    data: list[SnippetOut]
    next_cursor: str | None


class DirectoryConfig(Strict):
    path: Annotated[str, StringConstraints(min_length=1, max_length=1000), Storable] = Field(
        description="An absolute directory inside KEYPLANE_DATA_PROVIDER_ROOTS; its .md, "
        ".html and .txt files become snippets"
    )


class UrlsConfig(Strict):
    urls: list[WebUrl] = Field(min_length=1, max_length=100)


class DataProviderCreate(Strict):
    name: Name
    type: Literal["directory", "urls"]
    config: DirectoryConfig | UrlsConfig

    @model_validator(mode="after")
    def _config_fits_type(self) -> DataProviderCreate:
        expected = DirectoryConfig if self.type == "directory" else UrlsConfig
        if not isinstance(self.config, expected):
            field = '{"path": ...}' if self.type == "directory" else '{"urls": [...]}'
            raise ValueError(f"a {self.type} provider's config is {field}")
        return self


class SyncOut(BaseModel):
    status: Literal["idle", "pending", "running", "succeeded", "failed"]
    snippets_created: int
    snippets_updated: int
    snippets_removed: int
    last_error: str | None
    requested_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class DataProviderOut(BaseModel):
    id: int
    name: str
    type: Literal["directory", "urls"]
    config: dict[str, Any]
    sync: SyncOut = Field(description="The latest sync: status, counts and error")
    created_at: datetime
    updated_at: datetime


class DataProviderPage(BaseModel):
    data: list[DataProviderOut]
    next_cursor: str | None
