"""Fixtures for the CLI tests: an environment that points `keyplane` at the test database, an
in-process runner (typer's CliRunner, fast) and real `keyplane` subprocesses (for behaviour
across processes: a running server seeing the CLI's changes)."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner, Result

from keyplane.api.app import create_app
from keyplane.cli.app import app
from keyplane.runtime import Runtime
from keyplane.services import passwords
from keyplane.settings import Settings
from tests.conftest import PASSWORD, TEST_SECRET, _truncate, free_port

KEYPLANE = Path(sys.executable).parent / "keyplane"
OWNER_EMAIL = "owner@example.com"
KEY_RE = r"^sk_live_[0-9A-Za-z]{43}$"
TEST_KEY_RE = r"^sk_test_[0-9A-Za-z]{43}$"


def flat(text: str) -> str:
    """Rich wraps long lines at the console width; compare messages with whitespace folded."""
    return " ".join(text.split())


def clean_environ() -> dict[str, str]:
    """This process's environment without any KEYPLANE_* setting (nor forced colours, so that
    output is plain text)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KEYPLANE_") and k not in {"FORCE_COLOR", "TTY_COMPATIBLE"}
    }


@dataclass
class Cli:
    """Runs `keyplane` in-process (CliRunner) against the environment set by `cli_env`.

    Commands are written as on a shell (`cli.run("keys list --project 1")`), split with shlex;
    extra arguments are appended verbatim."""

    env: dict[str, str]
    runner: CliRunner = field(default_factory=CliRunner)

    def run(self, command: str, *extra: str, code: int = 0) -> Result:
        args = [*shlex.split(command), *extra]
        result = self.runner.invoke(app, args)
        assert result.exit_code == code, (
            f"keyplane {shlex.join(args)} exited {result.exit_code}, expected {code}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}\nexception: {result.exception!r}"
        )
        return result

    def json(self, command: str, *extra: str) -> Any:
        return json.loads(self.run(command, *extra, "--json").stdout)

    def bootstrap(self, email: str = OWNER_EMAIL) -> dict[str, int]:
        made: dict[str, int] = self.json(f"bootstrap --email {email} --password '{PASSWORD}'")
        return made

    def create_key(self, project_id: int, *permissions: str, name: str = "CI key") -> Any:
        flags = " ".join(f"-p {p}" for p in permissions)
        return self.json(f"keys create --project {project_id} --name '{name}' {flags}")

    def subprocess(self, command: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        """Runs the installed `keyplane` script in its own process."""
        done = subprocess.run(
            [str(KEYPLANE), *shlex.split(command)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == code, (
            f"keyplane {command} exited {done.returncode}, expected {code}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
        return done


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """KEYPLANE_* pointing at this test's (empty, migrated) database, set in this process for
    CliRunner and returned as a full environment for subprocesses."""
    asyncio.run(_truncate(database_url))  # the PostgreSQL database is shared by the session
    for name in list(os.environ):
        if name.startswith("KEYPLANE_"):
            monkeypatch.delenv(name)
    settings = {
        "KEYPLANE_DATABASE_URL": database_url,
        "KEYPLANE_SECRET_KEY": TEST_SECRET,
        "KEYPLANE_DATA_DIR": str(tmp_path),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    return clean_environ() | settings | {"PYTHONUNBUFFERED": "1"}


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with its production parameters costs ~0.2 s per `bootstrap`; what these tests
    check is the CLI, so the in-process commands hash with the cheapest parameters."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Cli:
    return Cli(cli_env)


def probe(key: str, project_id: int) -> httpx.Response:
    """GET /v1/projects/{id} with `key`, through a fresh in-process app built from the
    environment (as a freshly started server would see the database)."""

    async def call() -> httpx.Response:
        runtime = await Runtime.start(Settings(), migrate=False, background=False)
        try:
            transport = httpx.ASGITransport(app=create_app(runtime), client=("127.0.0.1", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://kp.test") as c:
                return await c.get(
                    f"/v1/projects/{project_id}", headers={"Authorization": f"Bearer {key}"}
                )
        finally:
            await runtime.close()

    return asyncio.run(call())


@dataclass
class Server:
    """One `keyplane serve --port <free port>` process, its output in files."""

    env: dict[str, str]
    cwd: Path
    logs: Path
    extra: tuple[str, ...] = ()
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    attempts: int = 0

    def spawn(self) -> None:
        self.port = free_port()
        self.attempts += 1
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [str(KEYPLANE), "serve", "--port", str(self.port), *self.extra],
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    @property
    def stdout(self) -> Path:
        return self.logs / "stdout"

    @property
    def stderr(self) -> Path:
        return self.logs / "stderr"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until GET /healthz answers 200. A port taken between free_port() and the server's
        bind (by any process on this machine) gets one more try on another port."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "address already in use" in self.output().lower() and self.attempts < 3:
                    self.spawn()
                    continue
                pytest.fail(
                    f"keyplane serve exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"keyplane serve did not answer /healthz within {timeout} s:\n{self.output()}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Starts `keyplane serve` subprocesses (`serve(env, cwd, *extra_args)`); always stops
    them, whatever the test did."""
    started: list[Server] = []

    def start(env: dict[str, str], cwd: Path, *extra: str) -> Server:
        logs = tmp_path / f"serve-{len(started)}"
        logs.mkdir()
        server = Server(env=env, cwd=cwd, logs=logs, extra=extra)
        started.append(server)
        server.spawn()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
