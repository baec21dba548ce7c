"""A real HTTP server on 127.0.0.1 for tests: serves fixed responses by path and records the
requests it got (the documents a URL data provider fetches, an OpenAI-compatible provider)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    body: bytes = b""

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Reply:
        return cls(status, "application/json", json.dumps(value).encode())


@dataclass
class Stub:
    base_url: str
    routes: dict[str, Reply]
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # extra, by path
    requests: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def serve(routes: dict[str, Reply]) -> Iterator[Stub]:
    stub = Stub("", routes)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            stub.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                }
            )
            reply = stub.routes.get(self.path, Reply(404, "text/plain", b"not found"))
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in stub.headers.get(self.path, {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
