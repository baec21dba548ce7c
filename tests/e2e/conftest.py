"""End-to-end fixtures: a real `keyplane serve` on a free loopback port (SQLite) and headless
Debian Chromium driven by Playwright. The browser is the system's /usr/bin/chromium: these
tests never download one, and fail (never skip) when it is missing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEYPLANE = Path(sys.executable).parent / "keyplane"
ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "correct horse battery"
TEST_SECRET = "1:e2e-secret-key-for-keyplane-browser-tests"


@dataclass
class Server:
    url: str
    db_path: Path
    env: dict[str, str]
    project_id: int
    email: str

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(KEYPLANE), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout

    def age_password_confirmation(self, minutes: int = 10) -> None:
        """Pretend every session confirmed its password `minutes` ago (reveal asks again)."""
        # SQLAlchemy keeps SQLite datetimes as naive UTC text in this format.
        past = (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S.%f")
        with sqlite3.connect(self.db_path) as db:
            db.execute("UPDATE sessions SET password_verified_at = ?", (past,))


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            "The browser tests need Debian's Chromium at /usr/bin/chromium; install it with "
            "`apt-get install -y chromium` (sudo if not root). Never run `playwright install`.",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("e2e")
    db_path = data / "keyplane.db"
    port = free_port()
    env = {
        **os.environ,
        "KEYPLANE_DATABASE_URL": f"sqlite:///{db_path}",
        "KEYPLANE_SECRET_KEY": TEST_SECRET,
        "KEYPLANE_DATA_DIR": str(data),
        "KEYPLANE_LAST_USED_FLUSH_SECONDS": "1",
    }
    env.pop("KEYPLANE_REDIS_URL", None)  # memory limiter: the browser tests need no Redis
    email = "owner@example.com"
    process = subprocess.Popen(
        [str(KEYPLANE), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data / "server.log", "w"),  # noqa: SIM115 - closed with the process
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"keyplane serve did not start: {(data / 'server.log').read_text()}")
            time.sleep(0.2)
        server = Server(url, db_path, env, 0, email)
        made = json.loads(
            server.cli(
                "bootstrap",
                "--email",
                email,
                "--password",
                PASSWORD,
                "--org",
                "Acme",
                "--project",
                "Support Bot",
                "--json",
            )
        )
        server.project_id = made["project_id"]
        yield server
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[object]:
    """Module-scoped: Playwright's sync API keeps an event loop running on this thread while
    open, which asyncio tests collected after tests/e2e could not start under."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: object, server: Server) -> Iterator[object]:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    context = browser.new_context(base_url=server.url, viewport={"width": 1360, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()
