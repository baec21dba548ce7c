"""The embeddable verifier (keyplane.verify): what protecting your own API costs.

Two measurements, each against a baseline measured in the same run:

* In-process verification, served: a small FastAPI endpoint (``GET /invoices`` answering a
  JSON object, the harshest comparison) and ``GET /projects/{id}`` (one SELECT through
  SQLAlchemy, what most endpoints do), served by uvicorn in a subprocess, bare (the baseline),
  behind
  ``KeyplaneMiddleware`` and with ``Depends(keyplane.require(...))``. The verifier runs
  in-process on a real Runtime (SQLite in a temporary directory, memory rate limiter): the
  first request loads the key, the others hit the verified-key cache, count the rate limit and
  record usage, as in production. A closed-loop load on keep-alive connections (a raw asyncio
  client, far cheaper than the server) for ``--seconds`` per variant, two rounds in rotated
  order. Reported: requests/s, and the server's CPU time per request (from /proc, stable even
  when other processes compete for the CPU); the ratio is judged on CPU per request, i.e.
  the throughput one core would give. Target: the middleware keeps >= 90% of the bare
  endpoint's throughput.
* The same three apps called through their ASGI interface in a loop, in this process on one
  core (no server, no sockets), timed in CPU seconds: the strictest view of what verification
  adds, for context.
* Remote verification latency on loopback: a ``keyplane serve`` subprocess on the same
  SQLite file; ``Keyplane.remote(url, root_key)`` verifies a key sequentially, uncached
  (``cache_seconds=0``: one POST /v1/keys/verify each) and cached (the default 1 s positive
  cache); the baseline is ``GET /healthz`` on the same server with the same HTTP client.
  p50 / p99 in milliseconds.

Run:  .venv/bin/python benchmarks/verifier.py [--seconds S] [--requests N]
(about 15 s with the defaults; keep it short on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from _common import Result, load_average, pin_to_one_core, unpin
from keyplane.adapters.sql.database import create_engine, session_factory
from keyplane.domain.keyformat import Mode
from keyplane.runtime import Runtime
from keyplane.services import accounts, custom_permissions
from keyplane.services.keys import Actor, KeySpec
from keyplane.settings import Settings
from keyplane.verify import Keyplane, KeyplaneMiddleware

TARGET_RATIO = 0.90
VARIANTS = ["bare endpoint", "middleware", "dependency"]
SECRET = "1:benchmark-secret-key-not-for-production"


async def prepare(database: Path, data_dir: Path) -> tuple[Settings, str, str, int]:
    """A database with one project, a key holding invoices:read and a verifying user key."""
    settings = Settings(
        database_url=f"sqlite:///{database}",
        secret_key=SECRET,  # type: ignore[arg-type]
        data_dir=data_dir,
        _env_file=None,  # type: ignore[call-arg]
    )
    runtime = await Runtime.start(settings, background=False)
    try:
        async with runtime.transaction() as db:
            made = await accounts.bootstrap(db, email="bench@example.com", password="x" * 12)
            await accounts.set_plan(db, made.org_id, "enterprise", 10**6, 10**9)
            await custom_permissions.register(
                db, runtime.keys, Actor.operator(), made.project_id, "invoices:read"
            )
        async with runtime.transaction() as db:
            key = await runtime.keys.create_project_key(
                db, Actor.operator(), made.project_id, KeySpec("bench", ["invoices:read"])
            )
            root = await runtime.keys.create_user_key(
                db, Actor.operator(), made.user_id, KeySpec("verifier", ["api_key:read"], Mode.LIVE)
            )
    finally:
        await runtime.close()
    return settings, key.secret, root.secret, made.project_id


# --- in-process throughput -------------------------------------------------------------------
def apps(keyplane: Keyplane, engine: AsyncEngine | None = None) -> dict[str, FastAPI]:
    """The three variants of one small API: `GET /invoices` answers a constant (the harshest
    comparison: nothing but the framework to dilute verification) and, given an engine,
    `GET /projects/{id}` reads one row (what most endpoints do)."""
    built = {}
    sessions = session_factory(engine) if engine is not None else None
    for variant in VARIANTS:
        app = FastAPI()
        guard: list[Any] = (
            [Depends(keyplane.require("invoices:read"))] if variant == "dependency" else []
        )

        @app.get("/invoices", dependencies=guard)
        async def invoices() -> dict[str, object]:
            return {"invoices": []}

        if sessions is not None:
            factory = sessions

            @app.get("/projects/{project_id}", dependencies=guard)
            async def project(project_id: int) -> dict[str, object]:
                async with factory() as db:  # noqa: B023 (the same factory for every app)
                    name = await db.scalar(
                        text("SELECT name FROM projects WHERE id = :id"), {"id": project_id}
                    )
                return {"id": project_id, "name": name}

        if variant == "middleware":
            app.add_middleware(
                KeyplaneMiddleware,
                keyplane=keyplane,
                permission="invoices:read",
                exclude=["/healthz"],
            )
        built[variant] = app
    return built


def build_app(variant: str, keyplane: Keyplane, engine: AsyncEngine | None = None) -> FastAPI:
    app = apps(keyplane, engine)[variant]

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app


def serve(variant: str, port: int) -> None:
    """Child process: one variant under uvicorn, configured by KEYPLANE_* variables."""
    import uvicorn

    keyplane = Keyplane.from_env()
    app = build_app(variant, keyplane, create_engine(Settings().database_url))
    keyplane.install(app)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection (responses carry Content-Length)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.buffer) >= end + 4 + length:
            status = int(head[9:12])
            del self.buffer[: end + 4 + length]
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(status)

    async def send(self, request: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(
    port: int, key: str, seconds: float, connections: int, path: str = "/invoices"
) -> tuple[int, float]:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        _, connection = await loop.create_connection(_Connection, "127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                status = await connection.send(request)
                assert status == 200, status
                done += 1
        finally:
            assert connection.transport is not None
            connection.transport.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return done, time.perf_counter() - started


def served(
    settings: Settings, key: str, directory: Path, seconds: float, project_id: int
) -> list[tuple[str, str, float, float]]:
    """(endpoint, variant, requests/s, server CPU µs per request): each server takes both
    endpoints in turn; two rounds in rotated order."""
    endpoints = {"constant": "/invoices", "one SELECT": f"/projects/{project_id}"}
    totals = {(e, v): [0, 0.0, 0.0] for e in endpoints for v in VARIANTS}
    for order in (VARIANTS, VARIANTS[1:] + VARIANTS[:1]):
        for variant in order:
            port = _free_port()
            process = start_server(
                settings, port, directory, [sys.executable, __file__, "--serve", variant]
            )
            try:
                for endpoint, path in endpoints.items():
                    asyncio.run(load(port, key, 0.3, 4, path))  # warm-up: imports, caches
                    cpu = cpu_seconds(process.pid)
                    requests, elapsed = asyncio.run(load(port, key, seconds, 8, path))
                    total = totals[(endpoint, variant)]
                    total[0] += requests
                    total[1] += elapsed
                    total[2] += cpu_seconds(process.pid) - cpu
            finally:
                process.terminate()
                process.wait(timeout=10)
    return [(e, v, t[0] / t[1], t[2] / t[0] * 1e6) for (e, v), t in totals.items()]


def caller(app: FastAPI, key: str) -> Callable[[], Awaitable[int]]:
    """One request through the ASGI interface, as a server would make it."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/invoices",
        "raw_path": b"/invoices",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"api.test"), (b"authorization", f"Bearer {key}".encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    async def call() -> int:
        await app(dict(scope), receive, send)
        return status

    return call


async def throughput(name: str, call: Callable[[], Awaitable[int]], budget: float) -> Result:
    assert await call() == 200, f"{name}: the request was refused"
    for _ in range(200):  # warm-up
        await call()
    iterations, seconds, best, size = 0, 0.0, float("inf"), 500
    while seconds < budget:
        started = time.process_time()
        for _ in range(size):
            await call()
        took = time.process_time() - started
        seconds += took
        iterations += size
        best = min(best, took)
    return Result(name, iterations, seconds, best / size * 1e6)


async def in_process(settings: Settings, key: str, budget: float) -> list[Result]:
    runtime = await Runtime.start(settings, migrate=False, background=False)
    try:
        keyplane = Keyplane.local(runtime=runtime)
        results = []
        for name, app in apps(keyplane).items():
            results.append(await throughput(name, caller(app, key), budget))
            runtime.usage.drain()  # what a flush would do, between rows
        return results
    finally:
        await runtime.close()


# --- remote latency --------------------------------------------------------------------------
def server_env(settings: Settings) -> dict[str, str]:
    """A server process's environment: this run's database and secret, nothing inherited."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")} | {
        "KEYPLANE_DATABASE_URL": settings.database_url,
        "KEYPLANE_SECRET_KEY": SECRET,
        "KEYPLANE_DATA_DIR": str(settings.data_dir),
        "KEYPLANE_LOG_FORMAT": "json",
        "PYTHONPATH": str(Path(__file__).parent),
    }


def start_server(
    settings: Settings, port: int, cwd: Path, command: list[str] | None = None
) -> subprocess.Popen[bytes]:
    env = server_env(settings)
    keyplane = Path(sys.executable).parent / "keyplane"
    process = subprocess.Popen(
        [*(command or [str(keyplane), "serve"]), "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("keyplane serve did not start")


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


async def remote(url: str, key: str, root: str, requests: int) -> dict[str, tuple[float, float]]:
    figures: dict[str, tuple[float, float]] = {}
    async with httpx.AsyncClient(base_url=url) as http:
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            assert (await http.get("/healthz")).status_code == 200
            samples.append(time.perf_counter() - started)
        figures["GET /healthz (baseline)"] = percentiles(samples)
    for name, cache in (("remote verify, uncached", 0.0), ("remote verify, 1 s cache", 1.0)):
        keyplane = Keyplane.remote(url, root, cache_seconds=cache)
        try:
            await keyplane.verify(f"Bearer {key}", permission="invoices:read")  # warm-up
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                await keyplane.verify(f"Bearer {key}", permission="invoices:read")
                samples.append(time.perf_counter() - started)
            figures[name] = percentiles(samples)
        finally:
            await keyplane.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="time box per in-process row")
    parser.add_argument("--requests", type=int, default=1000, help="remote samples per row")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # child process: one variant
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        settings, key, root, project_id = asyncio.run(prepare(directory / "bench.db", directory))

        print(f"load average {load_average():.2f}; served: uvicorn, 8 connections, 2 rounds")
        rows = served(settings, key, directory, args.seconds, project_id)
        print()
        print(
            f"{'served (HTTP, loopback)':<26}{'endpoint':<12}{'req/s':>9}{'CPU µs/req':>12}"
            f"{'ratio':>7}"
        )
        base: dict[str, float] = {}
        ratios: dict[tuple[str, str], float] = {}
        for endpoint, variant, rps, cpu in rows:
            base.setdefault(endpoint, cpu)  # the bare endpoint comes first
            ratios[(endpoint, variant)] = base[endpoint] / cpu
            print(
                f"{variant:<26}{endpoint:<12}{rps:>9,.0f}{cpu:>12.0f}"
                f"{ratios[(endpoint, variant)]:>7.2f}"
            )
        for endpoint in base:
            ratio = ratios[(endpoint, "middleware")]
            print(
                f"target: middleware >= {TARGET_RATIO:.0%} of the bare endpoint's throughput "
                f"per CPU second, {endpoint} endpoint: "
                f"{'MET' if ratio >= TARGET_RATIO else 'NOT MET'} ({ratio:.0%})"
            )
        print()

        pinned, before = pin_to_one_core()
        print(
            f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
            f"{pinned}; load average {load_average():.2f}"
        )
        results = asyncio.run(in_process(settings, key, args.seconds))
        unpin(before)
        base = results[0]
        print()
        print(
            f"{'in-process (ASGI, one core)':<32}{'requests':>10}{'µs/req':>10}{'req/s':>10}"
            f"{'best µs':>10}{'ratio':>8}"
        )
        for r in results:
            print(
                f"{r.name:<32}{r.iterations:>10,}{r.per_op_us:>10.1f}{r.ops_per_second:>10,.0f}"
                f"{r.best_batch_us:>10.1f}{r.ops_per_second / base.ops_per_second:>8.2f}"
            )

        port = _free_port()
        server = start_server(settings, port, directory)
        try:
            figures = asyncio.run(remote(f"http://127.0.0.1:{port}", key, root, args.requests))
        finally:
            server.terminate()
            server.wait(timeout=10)
        print()
        print(f"{'remote, loopback (sequential)':<32}{'p50 ms':>10}{'p99 ms':>10}{'p50 ratio':>11}")
        baseline = figures["GET /healthz (baseline)"][0]
        for name, (p50, p99) in figures.items():
            print(f"{name:<32}{p50:>10.2f}{p99:>10.2f}{p50 / baseline:>11.2f}")
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


if __name__ == "__main__":
    sys.exit(main())
