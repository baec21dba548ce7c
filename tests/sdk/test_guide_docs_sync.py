"""The botBrains guide's "Update Knowledge When Docs Change" example: its GitHub Actions step
run as written by bash, as the runner does (`bash -e`), with curl against a live server (only
the base URL, project id and key changed), with a key holding exactly the permissions the guide
lists: knowledge:read, knowledge:write.

The runner puts each `${{ secrets.NAME }}` in place before bash sees the script; here each
becomes `${NAME}` and the secret comes in the environment, which bash expands into the same
command line. The environment is otherwise minimal (no proxy settings of the machine), and
CURL_HOME points at a .curlrc that only appends the HTTP status to the output, so that the test
can read it without changing the command."""

from __future__ import annotations

import asyncio
import json
import os
import re
import textwrap
from pathlib import Path
from typing import Any

from keyplane.sdk import AsyncClient
from tests.sdk.conftest import LiveServer

# The guide's workflow, verbatim.
WORKFLOW = """\
name: Sync Docs to botBrains

on:
  push:
    branches: [main]
    paths: ['docs/**']

jobs:
  sync:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v2

      - name: Trigger Knowledge Sync
        run: |
          curl -X POST \\
            https://api.botbrains.io/v1/projects/${{ secrets.BOTBRAINS_PROJECT_ID }}/data-providers/${{ secrets.DATA_PROVIDER_ID }}/sync \\
            -H "Authorization: Bearer ${{ secrets.BOTBRAINS_API_KEY }}" \\
            -H "Content-Type: application/json"
"""  # noqa: E501

PASSWORD_DOC = "# Resetting your password\n\nOpen the sign-in page and click Forgot password.\n"


def step_script(base_url: str) -> str:
    """The step's `run: |` block (the last lines of the workflow), secrets as variables."""
    block = textwrap.dedent(WORKFLOW.split("run: |\n", 1)[1])
    block = re.sub(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", r"${\1}", block)
    return block.replace("https://api.botbrains.io", base_url)


async def run_step(base_url: str, secrets: dict[str, str], home: Path) -> tuple[int, str, str]:
    """bash's exit status, the HTTP status and the response body."""
    (home / ".curlrc").write_text('write-out = "\\n%{http_code}"\n')
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "CURL_HOME": str(home), **secrets}
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-e",
        "-c",
        step_script(base_url),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _progress = await asyncio.wait_for(process.communicate(), timeout=30)
    body, status = out.decode().rsplit("\n", 1)
    assert process.returncode is not None
    return process.returncode, status, body


async def test_docs_sync_step_runs_as_written(live_server: LiveServer, tmp_path: Path) -> None:
    world = live_server.world
    # The repository's docs/, in a directory the server may read (its data directory).
    docs = tmp_path / "repo" / "docs"
    docs.mkdir(parents=True)
    (docs / "password.md").write_text(PASSWORD_DOC)
    home = tmp_path / "home"
    home.mkdir()
    api_key = await world.project_key("knowledge:read", "knowledge:write", name="Docs sync CI")
    async with AsyncClient(api_key, world.project_id, live_server.base_url) as client:
        provider = await client.data_providers.create(
            name="Docs", type="directory", config={"path": str(docs)}
        )
        secrets = {
            "BOTBRAINS_PROJECT_ID": str(world.project_id),
            "DATA_PROVIDER_ID": str(provider.id),
            "BOTBRAINS_API_KEY": api_key,
        }

        async def push_and_sync() -> dict[str, Any]:
            """A push to docs/ runs the step; then the test waits for the sync it started."""
            exit_status, http_status, body = await run_step(live_server.base_url, secrets, home)
            assert (exit_status, http_status) == (0, "202"), body
            assert json.loads(body)["sync"]["status"] in ("pending", "running")
            done = await client.data_providers.wait_for_sync(provider.id, timeout=30, interval=0.05)
            assert done.sync.status == "succeeded", done.sync
            snippets = [s async for s in client.snippets.iter(data_provider_id=provider.id)]
            return {"sync": done.sync, "snippets": {s.source: s for s in snippets}}

        first = await push_and_sync()
        assert first["sync"].snippets_created == 1
        assert first["snippets"]["password.md"].title == "Resetting your password"

        # The docs change: the next push brings the knowledge up to date.
        (docs / "password.md").write_text(PASSWORD_DOC + "\nThe reset link is valid for 30 min.\n")
        (docs / "refunds.md").write_text("# Refunds\n\nWithin 30 days of purchase.\n")
        second = await push_and_sync()
        assert (second["sync"].snippets_created, second["sync"].snippets_updated) == (1, 1)
        assert "valid for 30 min" in (second["snippets"]["password.md"].content or "")
        assert set(second["snippets"]) == {"password.md", "refunds.md"}

    # A key without knowledge:write is refused. curl without --fail still exits 0, so the
    # guide's step would pass in CI: the body says what went wrong.
    secrets["BOTBRAINS_API_KEY"] = await world.project_key("knowledge:read", name="read only")
    exit_status, http_status, body = await run_step(live_server.base_url, secrets, home)
    assert (exit_status, http_status) == (0, "403")
    refused = json.loads(body)
    assert (refused["error"], refused["required"]) == (
        "insufficient_permissions",
        "knowledge:write",
    )
