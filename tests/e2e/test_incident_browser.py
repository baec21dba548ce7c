"""The compromise playbook in a real browser against a real server: an alert about a key is
visible in the navigation, its key's "Compromised?" page revokes and replaces the key in one
step, and real HTTP calls show the old secret refused and the new one accepted."""

from __future__ import annotations

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor

from playwright.sync_api import Page, expect

from keyplane.adapters.sql.database import create_engine, session_factory
from keyplane.services.alerts import AlertSpec, raise_alert
from tests.e2e.conftest import Server
from tests.e2e.test_dashboard_browser import KEY_RE, call, screenshots, sign_in


def raise_leak_alert(server: Server, key_id: str) -> None:
    """Store an alert as the leak handler would (detection itself is tested in
    tests/security; here the dashboard's response to it is). Run on its own thread: the
    Playwright sync API holds this thread's event loop."""

    async def work() -> None:
        engine = create_engine(f"sqlite:///{server.db_path}")
        try:
            async with session_factory(engine)() as db, db.begin():
                await raise_alert(
                    db,
                    AlertSpec(
                        kind="leaked_key",
                        severity="critical",
                        message="This key's secret was found in a public repository.",
                        window="e2e-report",
                        project_id=server.project_id,
                        key_id=key_id,
                        details={"url": "https://example.com/acme/app/blob/main/.env"},
                    ),
                )
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, work()).result(timeout=60)


def test_revoke_and_replace_a_compromised_key(page: Page, server: Server) -> None:
    made = json.loads(
        server.cli(
            "keys",
            "create",
            "--name",
            "Zapier sync",
            "-p",
            "project:read",
            "--project",
            str(server.project_id),
            "--json",
        )
    )
    old_secret = made["secret"]
    assert call(server, old_secret).status_code == 200
    raise_leak_alert(server, made["id"])

    # The alert is visible: a badge on the project's Alerts tab, and the Alerts page.
    sign_in(page, server.email)
    tab = page.locator("#alerts-tab")
    expect(tab.locator(".alert-pill")).to_have_text(re.compile(r"^[1-9]\d*$"))
    open_before = int(tab.locator(".alert-pill").inner_text())
    tab.click()
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    row = page.locator("tr", has_text="found in a public repository")
    expect(row.locator(".severity")).to_have_text("critical")
    row.get_by_text("Details").click()
    expect(row.locator("dl.details")).to_contain_text("https://example.com/acme/app/blob/main/.env")
    screenshots(page, "alerts")

    # From the alert to its key's playbook.
    row.get_by_role("link", name="Respond to a compromise of Zapier sync").click()
    expect(page.get_by_role("heading", name="Compromised? Zapier sync")).to_be_visible()
    expect(page.locator("#key-state")).to_contain_text("This key works")
    expect(page.locator("#clients")).to_contain_text("127.0.0.1")
    expect(page.locator("#clients")).to_contain_text("python-httpx")
    expect(page.get_by_label("The old secret stops working")).to_have_value("0")
    screenshots(page, "compromised")

    # Revoke and replace, from the keyboard; the new secret is shown once.
    page.get_by_role("button", name="Revoke and replace").focus()
    page.keyboard.press("Enter")
    shown = page.get_by_role("dialog", name="Your new API key")
    expect(shown).to_be_visible()
    new_secret = page.locator("#new-secret").input_value()
    assert KEY_RE.match(new_secret)
    assert new_secret != old_secret

    # Real HTTP calls: the old secret is refused at once, the new one works.
    refused = call(server, old_secret)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "api_key_revoked"
    accepted = call(server, new_secret)
    assert accepted.status_code == 200, accepted.text

    shown.get_by_role("button", name="I have stored it, close").click()
    expect(page.locator("#flash")).to_contain_text("Replacement created")
    expect(page.locator("#key-state")).to_contain_text("Revoked")
    expect(page.locator("#replaced-by")).to_contain_text("Zapier sync")
    expect(page.locator("#audit-events")).to_contain_text("api_key.rotated")
    assert new_secret not in page.content()

    # The alert is handled from the same page; the badge goes.
    page.get_by_role("button", name=re.compile("^Acknowledge alert")).click()
    expect(page.get_by_role("status").filter(has_text="Alert acknowledged.")).to_be_visible()
    pill = page.locator("#alerts-tab .alert-pill")
    if open_before == 1:
        expect(pill).to_have_count(0)
    else:
        expect(pill).to_have_text(str(open_before - 1))

    # The keys list shows the replacement only.
    page.get_by_role("link", name="← API Keys").click()
    expect(page.locator("tr", has_text="Zapier sync")).to_have_count(1)
    expect(page.locator("tr", has_text="Zapier sync").locator("code.secret")).to_have_text(
        "••••••••••••" + new_secret[-4:]
    )
