"""Instructions per request, counted by valgrind: the steady view of the throughput targets.

The throughput targets compare two servers on one machine: keyplane's endpoint authenticated
vs with authentication off (issue 8: >= 85%), and your own endpoint behind
`KeyplaneMiddleware` vs bare (issue 10: >= 90%). Timed on a small shared VM, such ratios move
by +-20% from run to run (a neighbour on the sibling hyperthread, PostgreSQL and the load
generator competing for two cores). Instructions do not: this script counts the machine
instructions a real server process executes per request, which is what one quiet core's
throughput is inversely proportional to (up to instructions per cycle: cache misses are not in
it, which is why `http_bench.py` and `verifier.py` still time real load).

How: each server runs under `valgrind --tool=callgrind --instr-atstart=no`. It starts and is
warmed up uninstrumented; then `callgrind_control` zeroes the counters and switches
instrumentation on, REQUESTS requests go one at a time over one keep-alive connection, and
instrumentation goes off again. The count covers the whole process: uvicorn, the app, the
database driver's thread, asyncio. The servers' background loops (change feed, webhook
sender) are slowed to once every ten minutes in every server alike, because under valgrind's
~50x slowdown their polls would land on each request fifty times more often than in real life.
Repeated runs agree to within about 1%.

Pairs (same database, same request headers, one process each):

* `GET /v1/projects/{id}`: keyplane authenticated (key, rate limit, permission, usage, the
  rate-limit headers) vs `http_bench.py`'s authentication-off route running the same
  handler; on SQLite + memory limiter, PostgreSQL + memory limiter, PostgreSQL + Redis
  limiter.
* `verifier.py`'s small API: `GET /invoices` (a constant) and `GET /projects/{id}` (one
  SELECT), bare vs behind `KeyplaneMiddleware` vs with `Depends(keyplane.require(...))`.

Run:  .venv/bin/python benchmarks/instructions.py [--requests N]   (about 10 minutes; needs
valgrind, e.g. Debian's package)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import http_bench
import verifier
from http_bench import BASELINE_PATH, Server, Tenant, _Connection, http_request

TARGET_PLATFORM = http_bench.TARGET_RATIO  # issue 8
TARGET_EMBEDDED = verifier.TARGET_RATIO  # issue 10
QUIET_LOOPS = {"KEYPLANE_CHANGE_POLL_SECONDS": "600", "KEYPLANE_WEBHOOK_POLL_SECONDS": "600"}
WARM_UP = 200


@dataclass
class Count:
    label: str
    instructions: float  # per request


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


async def count(server: Server, path: str, secret: str, requests: int, out: Path) -> float:
    """Instructions per request of `server` (started under callgrind) answering `path`."""
    await server.ready(within=300)
    request = http_request(path, server.port, secret)
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(_Connection, "127.0.0.1", server.port)
    try:
        for _ in range(WARM_UP):
            status = await connection.send(request)
            assert status == 200, f"{server.name} answered {status} for {path}"
        pid = str(server.pid)
        callgrind_control("--zero", pid)
        callgrind_control("--instr=on", pid)
        statuses = [await connection.send(request) for _ in range(requests)]
        callgrind_control("--instr=off", pid)
        callgrind_control("--dump", pid)
        assert set(statuses) == {200}, f"{server.name} answered {set(statuses)} for {path}"
    finally:
        assert connection.transport is not None
        connection.transport.close()
    return dumped_total(out, pid) / requests


def dumped_total(out: Path, pid: str) -> int:
    """The instructions counted between the zeroing and the dump."""
    dumps = sorted(out.glob(f"callgrind.{pid}.*"))
    assert dumps, f"callgrind wrote no counts for process {pid}"
    return sum(
        int(line.split()[1])
        for line in dumps[-1].read_text().splitlines()
        if line.startswith("totals:")
    )


def under_callgrind(server: Server, out: Path) -> Server:
    server.argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}/callgrind.%p",
        *server.argv,
    ]
    server.env = server.env | QUIET_LOOPS
    return server


def keyplane_server(name: str, env: dict[str, str], workdir: Path, out: Path) -> Server:
    server = Server.keyplane(name, env, workdir)
    # `keyplane` is a script: valgrind must run the interpreter, not the script's launcher.
    server.argv = [sys.executable, *server.argv]
    return under_callgrind(server, out)


async def measure(server: Server, path: str, secret: str, requests: int, out: Path) -> float:
    server.start()
    try:
        return await count(server, path, secret, requests, out)
    finally:
        server.stop()


# --- issue 8: keyplane's own endpoint --------------------------------------------------------
async def platform(options: argparse.Namespace, workdir: Path, out: Path) -> list[Count]:
    sqlite_env = http_bench.server_env(f"sqlite:///{workdir / 'bench.db'}", workdir, None)
    sqlite_tenant = await asyncio.to_thread(http_bench.setup_tenant, sqlite_env, workdir)
    counts: list[Count] = []
    async with http_bench.bench_database(options.postgres_url, "keyplane_instructions") as dsn:
        pg_url = dsn.replace("postgresql://", "postgresql+asyncpg://")
        pg_env = http_bench.server_env(pg_url, workdir, None)
        redis_env = http_bench.server_env(pg_url, workdir, options.redis_url)
        pg_tenant = await asyncio.to_thread(http_bench.setup_tenant, pg_env, workdir)
        await http_bench.flush_redis(options.redis_url)
        rows: list[tuple[str, Server, Tenant, bool]] = [
            (
                "SQLite, authentication off",
                under_callgrind(Server.baseline("open sqlite", sqlite_env, workdir), out),
                sqlite_tenant,
                False,
            ),
            (
                "SQLite + memory limiter, authenticated",
                keyplane_server("sqlite memory", sqlite_env, workdir, out),
                sqlite_tenant,
                True,
            ),
            (
                "PostgreSQL, authentication off",
                under_callgrind(Server.baseline("open postgres", pg_env, workdir), out),
                pg_tenant,
                False,
            ),
            (
                "PostgreSQL + memory limiter, authenticated",
                keyplane_server("postgres memory", pg_env, workdir, out),
                pg_tenant,
                True,
            ),
            (
                "PostgreSQL + Redis limiter, authenticated",
                keyplane_server("postgres redis", redis_env, workdir, out),
                pg_tenant,
                True,
            ),
        ]
        for label, server, tenant, auth in rows:
            path = f"/v1/projects/{tenant.project_id}"
            if not auth:
                path = BASELINE_PATH.format(project_id=tenant.project_id)
            per_request = await measure(server, path, tenant.secret, options.requests, out)
            counts.append(Count(label, per_request))
            print(f"  {label:<48} {per_request / 1000:>9,.1f}k", flush=True)
        await http_bench.flush_redis(options.redis_url)
    return counts


# --- issue 10: your own endpoint behind the embeddable verifier --------------------------
async def embedded(options: argparse.Namespace, workdir: Path, out: Path) -> list[Count]:
    settings, key, _root, project_id = await verifier.prepare(workdir / "own.db", workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")} | {
        "KEYPLANE_DATABASE_URL": settings.database_url,
        "KEYPLANE_SECRET_KEY": verifier.SECRET,
        "KEYPLANE_DATA_DIR": str(workdir),
        "KEYPLANE_LOG_FORMAT": "json",
        "PYTHONPATH": str(Path(__file__).parent),
    }
    counts: list[Count] = []
    for endpoint, path in (("constant", "/invoices"), ("one SELECT", f"/projects/{project_id}")):
        for variant in verifier.VARIANTS:
            port = http_bench.free_port()
            argv = [sys.executable, verifier.__file__, "--serve", variant, "--port", str(port)]
            server = under_callgrind(Server(variant, argv, port, env, workdir), out)
            server.ready_path = "/healthz"  # the small API has no /readyz
            per_request = await measure(server, path, key, options.requests, out)
            label = f"{variant}, {endpoint}"
            counts.append(Count(label, per_request))
            print(f"  {label:<48} {per_request / 1000:>9,.1f}k", flush=True)
    return counts


def report(title: str, counts: list[Count], pairs: list[tuple[str, str, float | None]]) -> bool:
    """Print the counts and each row's ratio to its baseline; whether every target is met."""
    by_label = {c.label: c.instructions for c in counts}
    print(f"\n{title}\n")
    print(f"| {'server':<48} | instructions/request |")
    print(f"|{'-' * 50}|---------------------:|")
    for c in counts:
        print(f"| {c.label:<48} | {c.instructions / 1000:>19,.1f}k |")
    ok = True
    print()
    for row, baseline, target in pairs:
        ratio = by_label[baseline] / by_label[row]
        line = f"- {row} / {baseline}: {ratio:.1%} (throughput per core, by instructions)"
        if target is not None:
            met = ratio >= target
            ok &= met
            line += f" (target >= {target:.0%}: {'MET' if met else 'NOT MET'})"
        print(line)
    return ok


async def run(options: argparse.Namespace) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="keyplane-instructions-") as tmp:
        workdir = Path(tmp)
        out = workdir / "callgrind"
        out.mkdir()
        mine: list[Count] = []
        own: list[Count] = []
        if options.only in (None, "platform"):
            print(f"keyplane's endpoint, {options.requests} requests per server:", flush=True)
            mine = await platform(options, workdir, out)
        if options.only in (None, "embedded"):
            print(f"your endpoint behind keyplane.verify, {options.requests} requests per server:")
            own = await embedded(options, workdir, out)
    ok = True
    if mine:
        ok &= report(
            "## keyplane's endpoint: authenticated vs authentication off",
            mine,
            [
                (f"{config}, authenticated", f"{database}, authentication off", TARGET_PLATFORM)
                for config, database in (
                    ("SQLite + memory limiter", "SQLite"),
                    ("PostgreSQL + memory limiter", "PostgreSQL"),
                    ("PostgreSQL + Redis limiter", "PostgreSQL"),
                )
            ],
        )
    if own:
        ok &= report(
            "## your endpoint: behind KeyplaneMiddleware vs bare",
            own,
            [
                (
                    f"{variant}, {endpoint}",
                    f"bare endpoint, {endpoint}",
                    TARGET_EMBEDDED if variant == "middleware" else None,
                )
                for endpoint in ("constant", "one SELECT")
                for variant in verifier.VARIANTS[1:]
            ],
        )
    print(f"\n({time.monotonic() - started:.0f} s)")
    return 0 if ok or not options.strict else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=500, help="counted requests per server")
    # As http_bench.py's: its database is created and dropped there, its Redis db flushed.
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--only", choices=["platform", "embedded"], help="one part only")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    options = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind); nothing measured")
        return 0
    return asyncio.run(run(options))


if __name__ == "__main__":
    sys.exit(main())
