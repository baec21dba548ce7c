"""`keyplane` commands in-process (DESIGN §8), on every storage backend: bootstrap, projects,
keys create/list/revoke/rotate. Output formats and exit codes are the public contract: errors go
to stderr with exit code 1, usage errors exit 2."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from keyplane.adapters.sql.models import KeyUsageHourly
from keyplane.runtime import Runtime
from keyplane.settings import Settings
from tests.cli.conftest import KEY_RE, OWNER_EMAIL, TEST_KEY_RE, Cli, flat, probe
from tests.conftest import PASSWORD

KEY_FIELDS = {
    "id",
    "name",
    "kind",
    "mode",
    "hint",
    "permissions",
    "created_at",
    "created_by",
    "last_used_at",
    "expires_at",
    "rotated_from",
    "ip_allowlist",
    "rate_limit",
}
ANY_KEY = re.compile(r"sk_(?:live|test)_[0-9A-Za-z]{43}")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- bootstrap ----------------------------------------------------------------------------------
def test_bootstrap_json_prints_exactly_the_three_ids_and_refuses_a_second_owner(cli: Cli) -> None:
    result = cli.run(f"bootstrap --email {OWNER_EMAIL} --password '{PASSWORD}' --json")
    made = json.loads(result.stdout)
    assert set(made) == {"org_id", "user_id", "project_id"}
    assert all(isinstance(value, int) and value > 0 for value in made.values())
    assert result.stderr == ""

    again = cli.run(
        f"bootstrap --email {OWNER_EMAIL.upper()} --password '{PASSWORD}' --json", code=1
    )
    assert again.stdout == ""
    message = flat(again.stderr)
    assert "already exists" in message
    assert OWNER_EMAIL in message


def test_bootstrap_without_json_says_what_to_do_next(cli: Cli) -> None:
    short = cli.run(f"bootstrap --email {OWNER_EMAIL} --password short", code=1)
    assert "at least" in flat(short.stderr)

    result = cli.run(f"bootstrap --email {OWNER_EMAIL} --password '{PASSWORD}'")
    assert "keyplane keys create --project" in flat(result.stdout)


# --- projects -----------------------------------------------------------------------------------
def test_projects_create_and_list(cli: Cli) -> None:
    made = cli.bootstrap()
    project = cli.json(f"projects create --org {made['org_id']} --name 'Support bot'")
    assert set(project) >= {"id", "org_id", "name"}
    assert project["org_id"] == made["org_id"]
    assert project["name"] == "Support bot"
    assert isinstance(project["id"], int)
    assert project["id"] != made["project_id"]

    listed = cli.json("projects list")
    assert [p["id"] for p in listed] == sorted([made["project_id"], project["id"]])
    by_id = {p["id"]: p for p in listed}
    assert by_id[project["id"]]["name"] == "Support bot"
    assert by_id[project["id"]]["org_id"] == made["org_id"]
    assert parse_time(by_id[project["id"]]["created_at"]).tzinfo is not None

    assert "Support bot" in cli.run("projects list").stdout

    unknown = cli.run("projects create --org 999 --name Nowhere --json", code=1)
    assert unknown.stdout == ""
    assert "999" in flat(unknown.stderr)
    assert len(cli.json("projects list")) == 2


# --- keys create --------------------------------------------------------------------------------
def test_keys_create_prints_the_secret_and_closes_permissions(cli: Cli) -> None:
    made = cli.bootstrap()
    before = datetime.now(UTC)
    key = cli.create_key(made["project_id"], "knowledge:write", name="Production CRM Sync")
    assert set(key) >= KEY_FIELDS
    assert re.fullmatch(KEY_RE, key["secret"])
    assert key["kind"] == "project"
    assert key["mode"] == "live"
    assert key["name"] == "Production CRM Sync"
    assert key["permissions"] == ["knowledge:read", "knowledge:write"]
    assert key["hint"] == "…" + key["secret"][-4:]
    assert key["expires_at"] is None
    assert key["rotated_from"] is None
    assert key["ip_allowlist"] == []
    assert key["rate_limit"] is None
    assert key["id"].startswith("key_")
    assert parse_time(key["created_at"]) >= before - timedelta(seconds=5)

    # Without --json: the secret once, and a warning that it will not be shown again.
    result = cli.run(f"keys create --project {made['project_id']} --name k -p project:read")
    assert len(ANY_KEY.findall(result.stdout)) == 1
    assert "not be shown again" in flat(result.stdout)


def test_keys_create_test_key_and_daily_rate_limit(cli: Cli) -> None:
    made = cli.bootstrap()
    key = cli.json(
        f"keys create --project {made['project_id']} --name staging -p export:read --test "
        "--rate-limit 5000/day"
    )
    assert re.fullmatch(TEST_KEY_RE, key["secret"])
    assert key["mode"] == "test"
    assert key["rate_limit"] == {"per_day": 5000}


def test_keys_create_with_expiry_ip_allowlist_and_rate_limit(cli: Cli) -> None:
    made = cli.bootstrap()
    key = cli.json(
        f"keys create --project {made['project_id']} --name 'locked down' "
        "-p conversation:read -p project:read --expires-in 90d "
        "--ip 10.0.0.0/8 --ip 192.168.1.7 --rate-limit 50/min"
    )
    expires = parse_time(key["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=1)
    assert key["ip_allowlist"][0] == "10.0.0.0/8"
    assert len(key["ip_allowlist"]) == 2
    assert "192.168.1.7" in key["ip_allowlist"][1]
    assert key["rate_limit"] == {"per_minute": 50}
    assert key["permissions"] == ["conversation:read", "project:read"]


def test_keys_create_refusals_exit_1_with_a_message_on_stderr(cli: Cli) -> None:
    made = cli.bootstrap()
    project = made["project_id"]

    def refused(options: str) -> str:
        result = cli.run(f"keys create --name x {options} --json", code=1)
        assert result.stdout == "", options
        return flat(result.stderr)

    message = refused(f"--project {project} -p org:read")
    assert "org:read" in message
    assert "organization-level" in message

    message = refused(f"--project {project} -p project:read -p knowledge:destroy")
    assert "Unknown permission" in message
    assert "knowledge:destroy" in message

    assert "api_key" in refused(f"--project {project} -p api_key:write")  # user keys only
    assert "4242" in refused("--project 4242 -p project:read")
    assert "nobody@example.com" in refused("--user nobody@example.com -p project:read")
    assert "org:write" in refused(f"--user {OWNER_EMAIL} -p org:write")

    assert cli.json(f"keys list --project {project}") == []
    assert cli.json(f"keys list --user {OWNER_EMAIL}") == []


def test_keys_create_bad_option_values_are_usage_errors(cli: Cli) -> None:
    made = cli.bootstrap()
    project = made["project_id"]
    for option, value in [
        ("--expires-in", "xyz"),
        ("--expires-in", "90 days"),
        ("--rate-limit", "fast"),
        ("--rate-limit", "50/hour"),
    ]:
        result = cli.run(
            f"keys create --project {project} --name x -p project:read --json",
            option,
            value,
            code=2,
        )
        assert result.stdout == "", value
        assert value in result.stderr, value
    # Exactly one of --project and --user.
    cli.run("keys create --name x -p project:read", code=2)
    cli.run(f"keys create --project {project} --user {OWNER_EMAIL} --name x -p x:y", code=2)
    assert cli.json(f"keys list --project {project}") == []


def test_keys_create_user_key(cli: Cli) -> None:
    made = cli.bootstrap()
    key = cli.json(f"keys create --user {OWNER_EMAIL} --name 'My automation' -p api_key:write")
    assert key["kind"] == "user"
    assert key["user_id"] == made["user_id"]
    assert key["project_id"] is None
    assert re.fullmatch(KEY_RE, key["secret"])
    assert key["permissions"] == ["api_key:read", "api_key:write"]

    listed = cli.json(f"keys list --user {OWNER_EMAIL}")
    assert [k["id"] for k in listed] == [key["id"]]
    assert "secret" not in listed[0]
    # A user key is not one of the project's keys.
    assert cli.json(f"keys list --project {made['project_id']}") == []


# --- the per-project limit ----------------------------------------------------------------------
def test_the_eleventh_key_in_a_project_is_refused(cli: Cli) -> None:
    made = cli.bootstrap()
    project = made["project_id"]
    keys = [cli.create_key(project, "project:read", name=f"k{i}") for i in range(10)]
    result = cli.run(f"keys create --project {project} --name k11 -p project:read --json", code=1)
    assert result.stdout == ""
    assert "maximum of 10" in flat(result.stderr)
    assert len(cli.json(f"keys list --project {project}")) == 10

    # Revoking one frees a slot.
    cli.run(f"keys revoke {keys[0]['id']}")
    cli.create_key(project, "project:read", name="k11")
    assert len(cli.json(f"keys list --project {project}")) == 10


# --- keys list ----------------------------------------------------------------------------------
def test_keys_list_is_masked(cli: Cli) -> None:
    made = cli.bootstrap()
    project = made["project_id"]
    created = [
        cli.create_key(project, "knowledge:write", name="first"),
        cli.create_key(project, "conversation:read", name="second"),
    ]
    result = cli.run(f"keys list --project {project} --json")
    listed = json.loads(result.stdout)
    assert [k["id"] for k in listed] == [k["id"] for k in created]
    for shown, made_key in zip(listed, created, strict=True):
        assert "secret" not in shown
        assert set(shown) >= KEY_FIELDS
        assert shown["hint"] == "…" + made_key["secret"][-4:]
        assert shown["permissions"] == made_key["permissions"]
    assert not ANY_KEY.search(result.stdout)
    for made_key in created:
        assert made_key["secret"][8:20] not in result.stdout  # not even part of the random part

    table = cli.run(f"keys list --project {project}")
    assert not ANY_KEY.search(table.stdout)
    assert "sk_live_" not in table.stdout
    for made_key in created:
        assert made_key["secret"][8:20] not in table.stdout
        assert "••••" + made_key["secret"][-4:] in table.stdout

    unknown = cli.run("keys list --project 777 --json", code=1)
    assert unknown.stdout == ""
    assert "777" in flat(unknown.stderr)


# --- revoke and rotate --------------------------------------------------------------------------
def test_keys_revoke_rejects_the_key(cli: Cli) -> None:
    made = cli.bootstrap()
    key = cli.create_key(made["project_id"], "project:read")
    assert probe(key["secret"], made["project_id"]).status_code == 200

    result = cli.run(f"keys revoke {key['id']}")
    assert key["id"] in result.stdout

    response = probe(key["secret"], made["project_id"])
    assert response.status_code == 401
    assert response.json()["error"] == "api_key_revoked"
    assert key["secret"] not in response.text
    assert cli.json(f"keys list --project {made['project_id']}") == []

    again = cli.run(f"keys revoke {key['id']}", code=1)
    assert key["id"] in flat(again.stderr)
    unknown = cli.run("keys revoke key_doesnotexist00", code=1)
    assert "key_doesnotexist00" in flat(unknown.stderr)


def test_keys_rotate_without_grace(cli: Cli) -> None:
    made = cli.bootstrap()
    project = made["project_id"]
    old = cli.json(
        f"keys create --project {project} --name rotating -p project:read "
        "--ip 127.0.0.0/8 --rate-limit 50/min"
    )
    new = cli.json(f"keys rotate {old['id']} --grace 0")
    assert re.fullmatch(KEY_RE, new["secret"])
    assert new["secret"] != old["secret"]
    assert new["id"] != old["id"]
    assert new["rotated_from"] == old["id"]
    for same in ("name", "kind", "mode", "permissions", "ip_allowlist", "rate_limit"):
        assert new[same] == old[same], same

    rejected = probe(old["secret"], project)
    assert rejected.status_code == 401
    assert rejected.json()["error"] == "api_key_revoked"
    assert probe(new["secret"], project).status_code == 200
    assert [k["id"] for k in cli.json(f"keys list --project {project}")] == [new["id"]]

    # The old key is gone: it cannot be rotated again.
    result = cli.run(f"keys rotate {old['id']} --grace 0 --json", code=1)
    assert result.stdout == ""
    assert old["id"] in flat(result.stderr)


def test_keys_rotate_with_grace_keeps_the_old_secret_working(cli: Cli) -> None:
    made = cli.bootstrap()
    old = cli.create_key(made["project_id"], "project:read")

    bad = cli.run(f"keys rotate {old['id']} --grace soon", code=2)
    assert "soon" in bad.stderr

    result = cli.run(f"keys rotate {old['id']} --grace 1h")
    secrets = ANY_KEY.findall(result.stdout)
    assert len(secrets) == 1
    assert secrets[0] != old["secret"]
    assert probe(old["secret"], made["project_id"]).status_code == 200
    assert probe(secrets[0], made["project_id"]).status_code == 200


def test_keys_rotate_a_test_key_gives_a_test_key(cli: Cli) -> None:
    made = cli.bootstrap()
    old = cli.json(f"keys create --project {made['project_id']} --name t -p project:read --test")
    new = cli.json(f"keys rotate {old['id']} --grace 0")
    assert re.fullmatch(TEST_KEY_RE, new["secret"])
    assert new["mode"] == "test"


def test_audit_report_and_audit_log_export(cli: Cli) -> None:
    ids = cli.bootstrap()
    key = cli.create_key(ids["project_id"], "project:read", name="Report me")
    report = cli.json(f"audit --project {ids['project_id']}")
    assert [entry["id"] for entry in report] == [key["id"]]
    assert report[0]["last_used_at"] is None
    table_output = cli.run(f"audit --project {ids['project_id']}").stdout
    assert "Report me" in table_output
    cli.run(f"keys revoke {key['id']}")
    lines = cli.run(f"audit-log --project {ids['project_id']}").stdout.splitlines()
    events = [json.loads(line) for line in lines]
    key_events = [e for e in events if e["key_id"]]
    assert [e["action"] for e in key_events] == ["api_key.deleted", "api_key.created"]
    assert all(e["key_id"] == key["id"] for e in key_events)
    assert "member.project_role_added" in {e["action"] for e in events}  # from bootstrap
    assert key["secret"][8:-6] not in "\n".join(lines)
    cli.run("audit --project 999", code=1)


def test_keys_usage_command(cli: Cli) -> None:
    ids = cli.bootstrap()
    key = cli.create_key(ids["project_id"], "project:read")
    assert probe(key["secret"], ids["project_id"]).status_code == 200  # flushed on close
    data = cli.json(f"keys usage {key['id']}")
    assert [p["success"] for p in data["data"]] == [1]
    assert data["permissions"] == {"project:read": 1}
    assert "project:read (1)" in cli.run(f"keys usage {key['id']}").stdout
    cli.run(f"keys usage {key['id']} --group-by year", code=2)


# --- housekeeping -------------------------------------------------------------------------------


def test_housekeeping_deletes_what_is_past_retention_and_says_how_much(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.bootstrap()
    now = datetime.now(UTC)

    async def seed() -> None:
        runtime = await Runtime.start(Settings(), migrate=False, background=False)
        try:
            async with runtime.transaction() as db:
                for days in (60, 35, 1):
                    db.add(
                        KeyUsageHourly(
                            key_id="key_a",
                            hour=now - timedelta(days=days),
                            status_class="success",
                            permission="project:read",
                            count=1,
                        )
                    )
        finally:
            await runtime.close()

    asyncio.run(seed())
    monkeypatch.setenv("KEYPLANE_USAGE_RETENTION_DAYS", "40")
    assert cli.json("housekeeping")["usage_rows"] == 1
    shown = cli.run("housekeeping").stdout
    assert re.search(r"usage rows\s*│\s*0", shown), shown  # nothing more to delete

    monkeypatch.setenv("KEYPLANE_USAGE_RETENTION_DAYS", "3")
    refused = cli.run("housekeeping", code=1)
    assert "invalid configuration: KEYPLANE_USAGE_RETENTION_DAYS" in flat(refused.stderr)
    assert "keep at least 31 days" in flat(refused.stderr), refused.stderr
