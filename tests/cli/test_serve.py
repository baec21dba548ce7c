"""`keyplane serve` as a real process over real TCP, changed by `keyplane` CLI processes
(DESIGN §8: "A change made by the CLI is seen by a running server within 1 s")."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.cli.conftest import Cli, Server, clean_environ, flat
from tests.conftest import BACKENDS, TEST_SECRET

StartServer = Callable[..., Server]
POLL_SECONDS = 0.05
CLI_CHANGE_DEADLINE = 1.0  # DESIGN §8


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def seconds_until_rejected(http: httpx.Client, path: str, key: str) -> tuple[float, httpx.Response]:
    """Polls every 50 ms until `key` gets a 401 (or 3 s pass). Called right after the CLI
    process that made the change has exited, so the time is measured from its exit."""
    start = time.monotonic()
    while True:
        response = http.get(path, headers=bearer(key))
        elapsed = time.monotonic() - start
        if response.status_code == 401 or elapsed > 3.0:
            return elapsed, response
        time.sleep(POLL_SECONDS)


def unconfigure(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KEYPLANE_"):
            monkeypatch.delenv(name)


def test_cli_revocation_reaches_a_running_server_within_a_second(
    cli: Cli, cli_env: dict[str, str], serve: StartServer, tmp_path: Path
) -> None:
    # What is checked is the default change_poll_seconds (0.5 s): nothing here sets it.
    assert not any(name.startswith("KEYPLANE_CHANGE") for name in cli_env)
    server = serve(cli_env, tmp_path)
    made = cli.bootstrap()  # while the server starts
    project = made["project_id"]
    with ThreadPoolExecutor(1) as pool:  # and so does the CLI process that creates the key
        creating = pool.submit(
            cli.subprocess, f"keys create --project {project} --name live -p project:read --json"
        )
        server.wait_healthy()
        key = json.loads(creating.result().stdout)

    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        path = f"/v1/projects/{project}"
        for _ in range(3):  # the server now holds the key in its cache
            response = http.get(path, headers=bearer(key["secret"]))
            assert response.status_code == 200, response.text
            assert response.json()["id"] == project

        revoked = cli.subprocess(f"keys revoke {key['id']}")
        elapsed, response = seconds_until_rejected(http, path, key["secret"])

        assert key["id"] in revoked.stdout
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "api_key_revoked"
        assert "invalid_token" in response.headers["www-authenticate"]
        assert key["secret"] not in response.text
        assert elapsed < CLI_CHANGE_DEADLINE, f"revocation took {elapsed:.2f} s to reach the server"

        # A rotation without grace (an in-process CLI this time) reaches it as fast.
        old = cli.create_key(project, "project:read", name="rotating")
        assert http.get(path, headers=bearer(old["secret"])).status_code == 200
        new = cli.json(f"keys rotate {old['id']} --grace 0")
        elapsed, response = seconds_until_rejected(http, path, old["secret"])
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "api_key_revoked"
        assert elapsed < CLI_CHANGE_DEADLINE, f"rotation took {elapsed:.2f} s to reach the server"
        assert http.get(path, headers=bearer(new["secret"])).status_code == 200

    banner = flat(server.stdout.read_text())
    assert f"http://127.0.0.1:{server.port}" in banner
    assert "keyplane bootstrap --email" in banner
    output = server.output()
    for secret in (key["secret"], old["secret"], new["secret"]):
        assert secret not in output


def test_serve_without_any_configuration(
    serve: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh directory and no KEYPLANE_* at all: serve creates ./keyplane.db and a 0600
    ./keyplane.secret, and the CLI run from the same directory works with the same secret."""
    home = tmp_path / "fresh"
    home.mkdir()
    server = serve(clean_environ() | {"PYTHONUNBUFFERED": "1"}, home)
    server.wait_healthy()

    assert (home / "keyplane.db").is_file()
    secret_file = home / "keyplane.secret"
    assert secret_file.is_file()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert "keyplane.secret" in flat(server.stderr.read_text())  # it says so
    assert "sqlite:///./keyplane.db" in flat(server.stdout.read_text())

    # The CLI in the same directory, also unconfigured, shares the database and the secret.
    unconfigure(monkeypatch)
    monkeypatch.chdir(home)
    cli = Cli(env={})
    made = cli.bootstrap()
    key = cli.create_key(made["project_id"], "project:read")
    assert secret_file.read_text().strip() not in server.output()

    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        assert http.get("/v1/permissions").status_code == 200
        response = http.get(f"/v1/projects/{made['project_id']}", headers=bearer(key["secret"]))
        assert response.status_code == 200, response.text

    # SIGTERM is a graceful shutdown (uvicorn re-raises the signal once it is done).
    assert server.stop() in (0, -signal.SIGTERM), server.output()
    assert "Application shutdown complete" in server.output()


def test_serve_banner_says_where_it_listens_and_how_to_bootstrap(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process, with uvicorn.run replaced: the banner and the options handed to uvicorn."""
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    result = cli.run("serve --host 0.0.0.0 --port 8123 --workers 2")
    banner = flat(result.stdout)
    assert "http://0.0.0.0:8123" in banner
    assert "keyplane bootstrap --email" in banner
    assert len(calls) == 1
    assert calls[0]["host"] == "0.0.0.0"
    assert calls[0]["port"] == 8123
    assert calls[0]["workers"] == 2


@pytest.mark.skipif("postgres" not in BACKENDS, reason="needs the postgres backend")
def test_serve_does_not_print_the_database_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The banner names the database, but a password in KEYPLANE_DATABASE_URL must not end up
    in the terminal or the logs. (The test PostgreSQL trusts local connections, so any password
    connects; uvicorn.run is replaced: the banner is printed before it.)"""
    url: str = request.getfixturevalue("postgres_database")
    password = "hunter2-database-password"
    with_password = url.replace("://postgres@", f"://postgres:{password}@")
    assert password in with_password
    unconfigure(monkeypatch)
    monkeypatch.setenv("KEYPLANE_DATABASE_URL", with_password)
    monkeypatch.setenv("KEYPLANE_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("KEYPLANE_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)

    result = Cli(env={}).run("serve --port 8124")
    output = result.stdout + result.stderr
    assert "http://127.0.0.1:8124" in flat(output)
    assert password not in output
