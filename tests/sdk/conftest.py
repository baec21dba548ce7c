"""A real keyplane server on a free loopback port (uvicorn in a thread, its own runtime from
the test's settings), for SDK tests over real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from keyplane.api.app import create_app
from keyplane.settings import Settings
from tests.conftest import World


@dataclass
class LiveServer:
    base_url: str
    world: World


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def live_server(settings: Settings, world: World) -> Iterator[LiveServer]:
    """Depends on `world`, so the database is clean and bootstrapped before it starts."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings=settings), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            pytest.fail("the keyplane test server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(base_url, world)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
