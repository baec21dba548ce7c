"""`keyplane permissions …` (issue 10): a project's own permissions from the command line."""

from __future__ import annotations

from tests.cli.conftest import Cli


def test_cli_manages_custom_permissions(cli: Cli) -> None:
    made = cli.bootstrap()
    project = made["project_id"]
    cli.run(f"permissions add invoices:read --project {project} --description 'Read invoices'")
    added = cli.json(f"permissions add invoices:write --project {project}")
    assert added["implies"] == ["invoices:read"]
    listed = cli.json(f"permissions list --project {project}")
    custom = [p["name"] for p in listed if p["custom"]]
    assert custom == ["invoices:read", "invoices:write"]
    assert "project:read" in [p["name"] for p in listed]
    key = cli.create_key(project, "invoices:write", "project:read")
    assert key["permissions"] == ["invoices:read", "invoices:write", "project:read"]
    refused = cli.run(f"permissions add knowledge:read --project {project}", code=1)
    assert "built-in" in refused.stderr
    cli.run(f"permissions remove invoices:write --project {project}")
    keys = cli.json(f"keys list --project {project}")
    assert keys[0]["permissions"] == ["invoices:read", "project:read"]
