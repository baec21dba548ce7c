"""`keyplane webhooks …`, `keyplane alerts list` and `keyplane orgs set-leak-policy`."""

from __future__ import annotations

import asyncio

from keyplane.runtime import Runtime
from keyplane.services.alerts import AlertSpec, raise_alert
from keyplane.settings import Settings
from tests.cli.conftest import Cli, flat


def _raise(project_id: int, org_id: int) -> None:
    async def work() -> None:
        runtime = await Runtime.start(Settings(), migrate=False, background=False)
        try:
            async with runtime.transaction() as db:
                await raise_alert(
                    db,
                    AlertSpec(
                        kind="new_network",
                        severity="medium",
                        message="Key key_x was used from a new network 203.0.0.0/16.",
                        window="2026-01-01T10",
                        org_id=org_id,
                        project_id=project_id,
                        key_id="key_x",
                    ),
                )
        finally:
            await runtime.close()

    asyncio.run(work())


def test_webhooks_add_list_remove(cli: Cli) -> None:
    made = cli.bootstrap()
    project = made["project_id"]
    added = cli.json(
        f"webhooks add --project {project} --url https://hooks.example.com/k -e alert.raised"
    )
    assert added["secret"].startswith("whsec_")
    assert added["events"] == ["alert.raised"]
    listed = cli.json(f"webhooks list --project {project}")
    assert [w["id"] for w in listed] == [added["id"]]
    assert "secret" not in listed[0]
    table = cli.run(f"webhooks list --project {project}").stdout
    assert "hooks.example.com" in table
    assert added["secret"] not in table
    cli.run(f"webhooks remove {added['id']} --project {project}")
    assert cli.json(f"webhooks list --project {project}") == []
    missing = cli.run(f"webhooks remove {added['id']} --project {project}", code=1)
    assert f"No webhook {added['id']}" in flat(missing.stderr)
    bad = cli.run(f"webhooks add --project {project} --url ftp://x", code=1)
    assert "http://" in flat(bad.stderr)


def test_alerts_list(cli: Cli) -> None:
    made = cli.bootstrap()
    assert cli.json(f"alerts list --project {made['project_id']}") == []
    _raise(made["project_id"], made["org_id"])
    [alert] = cli.json(f"alerts list --project {made['project_id']}")
    assert alert["kind"] == "new_network"
    assert "medium" in cli.run(f"alerts list --project {made['project_id']}").stdout
    assert [a["id"] for a in cli.json("alerts list")] == [alert["id"]]
    acked = cli.json(f"alerts ack {alert['id']} --project {made['project_id']}")
    assert acked["acknowledged_at"] is not None
    assert cli.json(f"alerts list --project {made['project_id']} --unacknowledged") == []
    missing = cli.run(f"alerts ack 999 --project {made['project_id']}", code=1)
    assert "No alert 999" in flat(missing.stderr)


def test_set_leak_policy(cli: Cli) -> None:
    made = cli.bootstrap()
    assert cli.json(f"orgs set-leak-policy {made['org_id']} flag") == {
        "id": made["org_id"],
        "leak_policy": "flag",
    }
    bad = cli.run(f"orgs set-leak-policy {made['org_id']} ignore", code=1)
    assert "revoke" in flat(bad.stderr)


def test_audit_pii_inventory(cli: Cli) -> None:
    """`keyplane audit --pii`: the keys and webhooks that reach personal data, as a table,
    JSON or CSV (issue 11)."""
    made = cli.bootstrap()
    project = made["project_id"]
    export = cli.create_key(project, "full_export:read", name="Warehouse")
    cli.create_key(project, "metric:read", name="Status page")
    hook = cli.json(
        f"webhooks add --project {project} --url http://127.0.0.1:9/h --test -e user.updated"
    )
    assert hook["mode"] == "test"
    items = cli.json(f"audit --project {project} --pii")
    assert [(i["type"], i["id"]) for i in items] == [
        ("api_key", export["id"]),
        ("webhook", str(hook["id"])),
    ]
    assert items[0]["personal_data"] == ["full_export:read"]
    assert items[1]["personal_data"] == ["user.updated"]
    table_output = flat(cli.run(f"audit --project {project} --pii").stdout)
    assert "Warehouse" in table_output
    assert "Status page" not in table_output
    csv_output = cli.run(f"audit --project {project} --pii --csv").stdout.splitlines()
    assert csv_output[0].startswith("type,id,kind,mode,name,owner,personal_data,last_used_at")
    assert len(csv_output) == 3
    cli.run("audit --project 999 --pii", code=1)


def test_keys_for_browser_use_are_test_keys_only(cli: Cli) -> None:
    project = cli.bootstrap()["project_id"]
    made = cli.json(
        f"keys create --project {project} --name Widget -p project:read --test --browser"
    )
    assert made["allow_browser"] is True
    refused = cli.run(
        f"keys create --project {project} --name Widget -p project:read --browser", code=1
    )
    assert "Only sk_test_ keys" in flat(refused.stderr)
