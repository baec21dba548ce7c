"""The synchronous client.

client = Client()  # KEYPLANE_API_KEY / BOTBRAINS_API_KEY, ..._PROJECT_ID, KEYPLANE_BASE_URL
for conversation in client.conversations.iter(status="unresolved"):
    ...
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import httpx

from keyplane.sdk import models as m
from keyplane.sdk._transport import UNSET, Config, Unset, check, clean, given, should_retry
from keyplane.sdk.errors import ConnectionFailed, SyncTimeout

T = TypeVar("T")
BATCH_LIMIT = 1000  # items per batch request, the server's limit
Parser = Callable[[dict[str, Any]], T]


def day_text(value: date | datetime | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def upload_parts(
    file: str | Path | bytes | IO[bytes], filename: str | None, content_type: str | None
) -> dict[str, tuple[str, bytes, str]]:
    if isinstance(file, str | Path):
        path = Path(file)
        data, name = path.read_bytes(), filename or path.name
    elif isinstance(file, bytes):
        data, name = file, filename or "upload"
    else:
        data = file.read()
        name = filename or Path(str(getattr(file, "name", "upload"))).name
    return {"file": (name, data, content_type or "application/octet-stream")}


class _Resource:
    def __init__(self, client: Client) -> None:
        self._c = client

    def _page(self, path: str, parse: Parser[T], params: dict[str, Any]) -> m.Page[T]:
        return m.Page.parse(self._c.request("GET", path, params=clean(params)).json(), parse)

    def _iter(self, path: str, parse: Parser[T], params: dict[str, Any]) -> Iterator[T]:
        cursor: str | None = None
        while True:
            page = self._page(path, parse, params | {"cursor": cursor})
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _batches(
        self, path: str, items: builtins.list[dict[str, Any]], chunk_size: int
    ) -> m.BatchResult:
        size = max(1, min(chunk_size, BATCH_LIMIT))
        parts = []
        for start in range(0, len(items), size):
            body = {"items": items[start : start + size]}
            parts.append(m.BatchResult.from_json(self._json("POST", path, json=body)))
        return m.BatchResult.merge(parts)

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._c.request(method, path, **kwargs).json()
        return body


class Conversations(_Resource):
    def list(
        self,
        *,
        limit: int = 20,
        status: str | None = None,
        user_id: str | None = None,
        cursor: str | None = None,
    ) -> m.Page[m.Conversation]:
        params = {"limit": limit, "status": status, "user_id": user_id, "cursor": cursor}
        return self._page(self._c.path("conversations"), m.Conversation.from_json, params)

    def iter(
        self, *, status: str | None = None, user_id: str | None = None, page_size: int = 100
    ) -> Iterator[m.Conversation]:
        params = {"limit": page_size, "status": status, "user_id": user_id}
        return self._iter(self._c.path("conversations"), m.Conversation.from_json, params)

    def get(self, conversation_id: int) -> m.Conversation:
        path = self._c.path("conversations", conversation_id)
        return m.Conversation.from_json(self._json("GET", path))

    def create(self, *, user_id: str, message: str) -> m.Conversation:
        body = {"user_id": user_id, "message": message}
        return m.Conversation.from_json(
            self._json("POST", self._c.path("conversations"), json=body)
        )

    def messages(self, conversation_id: int) -> builtins.list[m.Message]:
        body = self._json("GET", self._c.path("conversations", conversation_id, "messages"))
        return [m.Message.from_json(d) for d in body.get("data", [])]

    def add_message(self, conversation_id: int, *, content: str, role: str = "user") -> m.Message:
        path = self._c.path("conversations", conversation_id, "messages")
        return m.Message.from_json(
            self._json("POST", path, json={"role": role, "content": content})
        )

    def update(
        self,
        conversation_id: int,
        *,
        status: str | None = None,
        labels: builtins.list[str] | None = None,
    ) -> m.Conversation:
        body = clean({"status": status, "labels": labels})
        path = self._c.path("conversations", conversation_id)
        return m.Conversation.from_json(self._json("PATCH", path, json=body))

    def generate_response(self, *, conversation_id: int) -> m.GeneratedResponse:
        path = self._c.path("conversations", conversation_id, "generate")
        return m.GeneratedResponse.from_json(self._json("POST", path))


class Users(_Resource):
    def list(
        self, *, limit: int = 20, cursor: str | None = None, email: str | None = None
    ) -> m.Page[m.EndUser]:
        """Newest first; `email` keeps the users with that address."""
        params = {"limit": limit, "cursor": cursor, "email": email}
        return self._page(self._c.path("users"), m.EndUser.from_json, params)

    def iter(self, *, email: str | None = None, page_size: int = 100) -> Iterator[m.EndUser]:
        params = {"limit": page_size, "email": email}
        return self._iter(self._c.path("users"), m.EndUser.from_json, params)

    def get(self, external_id: str) -> m.EndUser:
        return m.EndUser.from_json(self._json("GET", self._c.path("users", external_id)))

    def upsert(
        self,
        external_id: str,
        *,
        first_name: str | Unset | None = UNSET,
        last_name: str | Unset | None = UNSET,
        email: str | Unset | None = UNSET,
        locale: str | Unset | None = UNSET,
        external_attributes: dict[str, Any] | Unset | None = UNSET,
    ) -> m.EndUser:
        """Creates the user or updates the fields passed; None clears a field.
        external_attributes are merged into the stored ones (a None value inside removes
        that attribute)."""
        body = given(
            {
                "first_name": first_name,
                "last_name": last_name,
                "email": email,
                "locale": locale,
                "external_attributes": external_attributes,
            }
        )
        path = self._c.path("users", external_id)
        return m.EndUser.from_json(self._json("PATCH", path, json=body))

    update = upsert

    def upsert_many(
        self, users: builtins.list[dict[str, Any]], *, chunk_size: int = BATCH_LIMIT
    ) -> m.BatchResult:
        """Creates or updates many users, each a dict with `external_id` and the fields to
        set (as `upsert`): up to 1,000 per request, each request one transaction and one
        request toward the rate limit. Larger lists are sent in chunks of `chunk_size`;
        a failing item raises ValidationError naming its index (earlier chunks stay)."""
        return self._batches(self._c.path("users", "batch"), users, chunk_size)


class Snippets(_Resource):
    def list(
        self, *, limit: int = 20, cursor: str | None = None, data_provider_id: int | None = None
    ) -> m.Page[m.Snippet]:
        """Newest first; `data_provider_id` keeps the ones that provider's syncs made."""
        params = {"limit": limit, "cursor": cursor, "data_provider_id": data_provider_id}
        return self._page(self._c.path("snippets"), m.Snippet.from_json, params)

    def iter(
        self, *, data_provider_id: int | None = None, page_size: int = 100
    ) -> Iterator[m.Snippet]:
        params = {"limit": page_size, "data_provider_id": data_provider_id}
        return self._iter(self._c.path("snippets"), m.Snippet.from_json, params)

    def get(self, snippet_id: int) -> m.Snippet:
        return m.Snippet.from_json(self._json("GET", self._c.path("snippets", snippet_id)))

    def create(self, *, title: str, content: str, url: str | None = None) -> m.Snippet:
        body = clean({"title": title, "content": content, "url": url})
        return m.Snippet.from_json(self._json("POST", self._c.path("snippets"), json=body))

    def update(
        self,
        snippet_id: int,
        *,
        title: str | Unset = UNSET,
        content: str | Unset = UNSET,
        url: str | Unset | None = UNSET,
    ) -> m.Snippet:
        """Changes the fields passed; url=None removes the URL."""
        body = given({"title": title, "content": content, "url": url})
        path = self._c.path("snippets", snippet_id)
        return m.Snippet.from_json(self._json("PATCH", path, json=body))

    def upsert_many(
        self, snippets: builtins.list[dict[str, Any]], *, chunk_size: int = BATCH_LIMIT
    ) -> m.BatchResult:
        """Creates or updates many snippets, each {title, content, url?, id?}: an id updates
        that snippet, a url the hand-written snippet with that url, otherwise one is created.
        Chunked like Users.upsert_many."""
        return self._batches(self._c.path("snippets", "batch"), snippets, chunk_size)

    def delete(self, snippet_id: int) -> None:
        self._c.request("DELETE", self._c.path("snippets", snippet_id))


class DataProviders(_Resource):
    def list(self, *, limit: int = 20, cursor: str | None = None) -> m.Page[m.DataProvider]:
        params = {"limit": limit, "cursor": cursor}
        return self._page(self._c.path("data-providers"), m.DataProvider.from_json, params)

    def iter(self, *, page_size: int = 100) -> Iterator[m.DataProvider]:
        path = self._c.path("data-providers")
        return self._iter(path, m.DataProvider.from_json, {"limit": page_size})

    def create(self, *, name: str, type: str, config: dict[str, Any]) -> m.DataProvider:
        """type "directory" with config {"path": "/abs/dir"} (a directory the server may read:
        KEYPLANE_DATA_PROVIDER_ROOTS), or "urls" with config {"urls": [...]}."""
        body = {"name": name, "type": type, "config": config}
        path = self._c.path("data-providers")
        return m.DataProvider.from_json(self._json("POST", path, json=body))

    def get(self, data_provider_id: int) -> m.DataProvider:
        """The provider with its latest sync's status and counts."""
        path = self._c.path("data-providers", data_provider_id)
        return m.DataProvider.from_json(self._json("GET", path))

    def sync(self, data_provider_id: int) -> m.DataProvider:
        """Starts a sync in the background (202) and returns the provider, its
        `sync.status` pending or running; a sync already under way is joined."""
        path = self._c.path("data-providers", data_provider_id, "sync")
        return m.DataProvider.from_json(self._json("POST", path))

    def wait_for_sync(
        self, data_provider_id: int, *, timeout: float = 60.0, interval: float = 0.5
    ) -> m.DataProvider:
        """Polls until the provider's sync is no longer pending or running and returns the
        provider (check `.sync.status`: succeeded or failed); SyncTimeout after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            provider = self.get(data_provider_id)
            if provider.sync.done:
                return provider
            if time.monotonic() >= deadline:
                raise SyncTimeout(data_provider_id, provider.sync.status, timeout)
            time.sleep(interval)


class Tables(_Resource):
    def list(self, *, limit: int = 20, cursor: str | None = None) -> m.Page[m.Table]:
        params = {"limit": limit, "cursor": cursor}
        return self._page(self._c.path("tables"), m.Table.from_json, params)

    def iter(self, *, page_size: int = 100) -> Iterator[m.Table]:
        return self._iter(self._c.path("tables"), m.Table.from_json, {"limit": page_size})

    def create(self, *, name: str, columns: builtins.list[dict[str, str]]) -> m.Table:
        """columns: [{"name": "sku", "type": "text|number|boolean|date"}, ...]"""
        body = {"name": name, "columns": columns}
        return m.Table.from_json(self._json("POST", self._c.path("tables"), json=body))

    def rows(
        self,
        table_id: int,
        *,
        limit: int = 20,
        cursor: str | None = None,
        filter: str | None = None,
    ) -> m.Page[m.Row]:
        params = {"limit": limit, "cursor": cursor, "filter": filter}
        return self._page(self._c.path("tables", table_id, "rows"), m.Row.from_json, params)

    def iter_rows(
        self,
        table_id: int,
        *,
        filter: str | None = None,
        page_size: int = 100,
    ) -> Iterator[m.Row]:
        params = {"limit": page_size, "filter": filter}
        return self._iter(self._c.path("tables", table_id, "rows"), m.Row.from_json, params)

    def add_row(self, table_id: int, values: dict[str, Any]) -> m.Row:
        path = self._c.path("tables", table_id, "rows")
        return m.Row.from_json(self._json("POST", path, json={"values": values}))

    def update_row(self, table_id: int, row_id: int, values: dict[str, Any]) -> m.Row:
        path = self._c.path("tables", table_id, "rows", row_id)
        return m.Row.from_json(self._json("PATCH", path, json={"values": values}))

    def upsert_rows(
        self,
        table_id: int,
        rows: builtins.list[dict[str, Any]],
        *,
        chunk_size: int = BATCH_LIMIT,
    ) -> m.BatchResult:
        """Adds or changes many rows, each {values, id?}: an id changes the cells given,
        otherwise a row is added. Chunked like Users.upsert_many."""
        path = self._c.path("tables", table_id, "rows", "batch")
        return self._batches(path, rows, chunk_size)

    def delete_row(self, table_id: int, row_id: int) -> None:
        self._c.request("DELETE", self._c.path("tables", table_id, "rows", row_id))


class Files(_Resource):
    def list(self, *, limit: int = 20, cursor: str | None = None) -> m.Page[m.File]:
        params = {"limit": limit, "cursor": cursor}
        return self._page(self._c.path("files"), m.File.from_json, params)

    def iter(self, *, page_size: int = 100) -> Iterator[m.File]:
        return self._iter(self._c.path("files"), m.File.from_json, {"limit": page_size})

    def get(self, file_id: int) -> m.File:
        return m.File.from_json(self._json("GET", self._c.path("files", file_id)))

    def upload(
        self,
        file: str | Path | bytes | IO[bytes],
        *,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> m.File:
        """A path, bytes or a binary file object. Without content_type the server goes by
        the file name's extension, and always checks the bytes."""
        parts = upload_parts(file, filename, content_type)
        return m.File.from_json(self._json("POST", self._c.path("files"), files=parts))

    def download(self, file_id: int) -> bytes:
        return self._c.request("GET", self._c.path("files", file_id, "content")).content

    def delete(self, file_id: int) -> None:
        self._c.request("DELETE", self._c.path("files", file_id))


class Labels(_Resource):
    def list(self, *, limit: int = 20, cursor: str | None = None) -> m.Page[m.Label]:
        """Oldest first."""
        params = {"limit": limit, "cursor": cursor}
        return self._page(self._c.path("labels"), m.Label.from_json, params)

    def iter(self, *, page_size: int = 100) -> Iterator[m.Label]:
        return self._iter(self._c.path("labels"), m.Label.from_json, {"limit": page_size})

    def upsert(self, name: str, *, description: str | None = None) -> m.Label:
        """Creates the label or returns the existing one, matching names case-insensitively
        (the first spelling stays); sets the description when one is given."""
        body = None if description is None else {"description": description}
        return m.Label.from_json(self._json("PUT", self._c.path("labels", name), json=body))


class Topics(_Resource):
    def list(self, *, limit: int = 20) -> builtins.list[m.Topic]:
        """The most frequent first; topics come on one page of at most `limit` (≤ 100)."""
        body = self._json("GET", self._c.path("topics"), params={"limit": limit})
        return [m.Topic.from_json(d) for d in body.get("data", [])]


class Metrics(_Resource):
    def get(
        self,
        *,
        start_date: date | datetime | str,
        end_date: date | datetime | str,
        group_by: str = "day",
    ) -> m.Metrics:
        params = {
            "start_date": day_text(start_date),
            "end_date": day_text(end_date),
            "group_by": group_by,
        }
        return m.Metrics.from_json(self._json("GET", self._c.path("metrics"), params=params))


class Deployments(_Resource):
    def list(self, *, limit: int = 20, cursor: str | None = None) -> m.Page[m.Deployment]:
        params = {"limit": limit, "cursor": cursor}
        return self._page(self._c.path("deployments"), m.Deployment.from_json, params)

    def iter(self, *, page_size: int = 100) -> Iterator[m.Deployment]:
        path = self._c.path("deployments")
        return self._iter(path, m.Deployment.from_json, {"limit": page_size})

    def create(
        self,
        *,
        channel: str,
        name: str,
        config: dict[str, Any] | None = None,
        status: str = "active",
    ) -> m.Deployment:
        body = {"channel": channel, "name": name, "config": config or {}, "status": status}
        path = self._c.path("deployments")
        return m.Deployment.from_json(self._json("POST", path, json=body))


class Exports(_Resource):
    def conversations(self) -> Iterator[dict[str, Any]]:
        """Each conversation with its messages, without end-user PII, streamed line by line."""
        return self._c.stream_lines(self._c.path("exports", "conversations"))

    def full(self) -> Iterator[dict[str, Any]]:
        """Like conversations(), with each end user's profile under "user"."""
        return self._c.stream_lines(self._c.path("exports", "full"))


class Webhooks(_Resource):
    """Webhook subscriptions of the project, in the key's mode (webhook:read / :write).
    Verify deliveries with keyplane.sdk.verify_webhook_signature."""

    def list(self) -> builtins.list[m.Webhook]:
        body = self._json("GET", self._c.path("webhooks"))
        return [m.Webhook.from_json(w) for w in body.get("data", [])]

    def get(self, webhook_id: int) -> m.Webhook:
        return m.Webhook.from_json(self._json("GET", self._c.path("webhooks", webhook_id)))

    def create(
        self,
        *,
        url: str,
        events: builtins.list[str] | None = None,
        description: str | None = None,
    ) -> m.Webhook:
        """Subscribes `url` to `events` (all when None). The result's `secret` is shown only
        now: store it to verify deliveries."""
        body = clean({"url": url, "events": events, "description": description})
        return m.Webhook.from_json(self._json("POST", self._c.path("webhooks"), json=body))

    def update(
        self,
        webhook_id: int,
        *,
        url: str | Unset = UNSET,
        events: builtins.list[str] | Unset | None = UNSET,
        description: str | Unset | None = UNSET,
        enabled: bool | Unset = UNSET,
    ) -> m.Webhook:
        """Changes the fields passed; enabled=True re-enables a webhook disabled after
        failures, enabled=False pauses it."""
        body = given({"url": url, "events": events, "description": description, "enabled": enabled})
        path = self._c.path("webhooks", webhook_id)
        return m.Webhook.from_json(self._json("PATCH", path, json=body))

    def delete(self, webhook_id: int) -> None:
        self._c.request("DELETE", self._c.path("webhooks", webhook_id))

    def deliveries(
        self, webhook_id: int, *, limit: int = 20, cursor: str | None = None
    ) -> m.Page[m.WebhookDelivery]:
        """Newest first: status, the receiver's HTTP status code, attempts, last error."""
        path = self._c.path("webhooks", webhook_id, "deliveries")
        return self._page(path, m.WebhookDelivery.from_json, {"limit": limit, "cursor": cursor})

    def iter_deliveries(
        self, webhook_id: int, *, page_size: int = 100
    ) -> Iterator[m.WebhookDelivery]:
        path = self._c.path("webhooks", webhook_id, "deliveries")
        return self._iter(path, m.WebhookDelivery.from_json, {"limit": page_size})

    def replay(self, webhook_id: int, delivery_id: int) -> m.WebhookDelivery:
        """Sends a delivery's event again (same body, new signature) as a new delivery."""
        path = self._c.path("webhooks", webhook_id, "deliveries", delivery_id, "replay")
        return m.WebhookDelivery.from_json(self._json("POST", path))


class Client:
    """Synchronous keyplane client; see the module docstring. Retries a 429 up to
    `max_retries` times, waiting what Retry-After asks, unless that exceeds `max_retry_wait`
    seconds; then raises RateLimitExceeded."""

    def __init__(
        self,
        api_key: str | None = None,
        project_id: int | str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.config = Config.resolve(
            api_key,
            project_id,
            base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
        )
        self._http = http_client or httpx.Client(timeout=timeout)
        self._owns_http = http_client is None
        self.conversations = Conversations(self)
        self.users = Users(self)
        self.snippets = Snippets(self)
        self.data_providers = DataProviders(self)
        self.tables = Tables(self)
        self.files = Files(self)
        self.labels = Labels(self)
        self.topics = Topics(self)
        self.metrics = Metrics(self)
        self.deployments = Deployments(self)
        self.exports = Exports(self)
        self.webhooks = Webhooks(self)

    def path(self, *parts: object) -> str:
        return self.config.path(*parts)

    def project(self) -> m.Project:
        return m.Project.from_json(self.request("GET", self.path()).json())

    def _send(self, method: str, path: str, stream: bool, **kwargs: Any) -> httpx.Response:
        url = self.config.base_url + path
        attempt = 0
        while True:
            try:
                request = self._http.build_request(
                    method, url, headers=self.config.headers(), **kwargs
                )
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                raise ConnectionFailed(
                    f"Could not reach {self.config.base_url}: {type(error).__name__}."
                ) from error
            wait = should_retry(self.config, response, attempt)
            if wait is None:
                if stream and not response.is_success:
                    response.read()
                return check(response)
            response.close()
            time.sleep(wait)
            attempt += 1

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._send(method, path, False, **kwargs)

    def stream_lines(self, path: str) -> Iterator[dict[str, Any]]:
        response = self._send("GET", path, True)
        try:
            for line in response.iter_lines():
                if line:
                    yield json.loads(line)
        finally:
            response.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
