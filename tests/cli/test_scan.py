"""`keyplane scan PATH…` (DESIGN §8): finds real keyplane keys (valid checksum) in files, exit 1
when any, names file:line with the key masked; look-alikes from the docs are not reported. It
needs no database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyplane.cli.app import app
from keyplane.domain.keyformat import Mode, generate

GUIDE_EXAMPLE = "sk_live_Np8JQxH7mF3vKL9wRt2YzBnX4cDq6sA1pWe5iUoGhMj"  # bad checksum
FINDING = re.compile(r"^(?P<file>\S.*):(?P<line>\d+): keyplane key (?P<key>sk_\w+_…\w{4})$")


def masked(key: str) -> str:
    return key[:8] + "…" + key[-4:]


def scan(*paths: str | Path, code: int) -> str:
    result = CliRunner().invoke(app, ["scan", *map(str, paths)])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result.stdout + result.stderr


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_scan_finds_a_real_key_and_masks_it(tmp_path: Path) -> None:
    key = generate(Mode.LIVE)
    repo = tmp_path / "repo"
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "settings.py").write_text(
        f'import os\n\nKEYPLANE_KEY = "{key}"\nDEBUG = False\n'
    )
    (repo / "README.md").write_text("nothing to see here\n")

    output = scan("repo", code=1)
    assert f"{Path('repo/app/settings.py')}:3: keyplane key {masked(key)}" in output
    assert key not in output
    assert key[8:-4] not in output
    assert "README.md" not in output
    assert "1 key(s) found" in " ".join(output.split())


def test_scan_reports_every_key_with_its_line(tmp_path: Path) -> None:
    live, test = generate(Mode.LIVE), generate(Mode.TEST)
    (tmp_path / ".env").write_text(f"A=1\nKEYPLANE_API_KEY={live}\n")
    (tmp_path / "config.json").write_text(
        '{\n  "comment": "first line",\n  "nested": {\n    "key": "' + test + '"\n  }\n}\n'
    )
    output = scan(".env", "config.json", code=1)
    assert f".env:2: keyplane key {masked(live)}" in output
    assert f"config.json:4: keyplane key {masked(test)}" in output
    assert live not in output
    assert test not in output
    assert "2 key(s) found" in " ".join(output.split())


@pytest.mark.parametrize(
    "text",
    [
        f"curl -H 'Authorization: Bearer {GUIDE_EXAMPLE}' https://api.example.com\n",
        "export KEYPLANE_KEY=sk_live_abc123def456...\n",
        "key = 'sk_live_abc123def456ghi789jkl012mno345pqr678stu901v'\n",  # right shape, bad CRC
        "sk_test_" + "0" * 43 + "\n",
        "no keys here\n",
    ],
    ids=["guide-example", "guide-ellipsis", "shaped-bad-checksum", "zeros", "plain"],
)
def test_scan_ignores_look_alikes(tmp_path: Path, text: str) -> None:
    (tmp_path / "docs.md").write_text("# Docs\n\n" + text)
    output = scan("docs.md", code=0)
    assert "keyplane key" not in output


def test_scan_ignores_a_key_inside_a_longer_token(tmp_path: Path) -> None:
    key = generate(Mode.LIVE)
    (tmp_path / "a.txt").write_text(f"x{key}\n{key}Z\n")
    assert "keyplane key" not in scan("a.txt", code=0)


def test_scan_skips_git_and_virtualenv_directories(tmp_path: Path) -> None:
    for skipped in (".git", ".venv", "node_modules"):
        (tmp_path / "repo" / skipped).mkdir(parents=True)
        (tmp_path / "repo" / skipped / "blob").write_text(generate(Mode.LIVE))
    (tmp_path / "repo" / "ok.py").write_text("print('hi')\n")
    assert "keyplane key" not in scan("repo", code=0)


def test_scan_prints_one_parsable_line_per_finding_whatever_the_path_length(
    tmp_path: Path,
) -> None:
    """A pre-commit hook's or CI log's output is read by tools (and grep): each finding must
    stay on one `file:line: …` line even when the path is longer than a terminal line."""
    key = generate(Mode.LIVE)
    deep = tmp_path / "services" / "customer_support_agent" / "integrations" / "crm_sync_worker"
    deep.mkdir(parents=True)
    (deep / "production_settings.py").write_text(f"X = 1\nKEY = '{key}'\n")

    output = scan(tmp_path, code=1)
    findings = [FINDING.match(line) for line in output.splitlines() if "keyplane key" in line]
    assert len(findings) == 1, output
    found = findings[0]
    assert found is not None, output
    assert found["file"] == str(deep / "production_settings.py")
    assert found["line"] == "2"
    assert found["key"] == masked(key)


def test_scan_of_a_missing_path_is_an_error_not_a_clean_pass(tmp_path: Path) -> None:
    """A typo in a pre-commit hook or CI step (`keyplane scan srcc/`) must not pass silently as
    "no keys found"."""
    (tmp_path / "src").mkdir()
    result = CliRunner().invoke(app, ["scan", "srcc"])
    assert result.exit_code != 0, result.stdout
    assert "srcc" in result.stderr
