"""The dashboard in a real browser against a real server: the botBrains guide's walk through
Project → Settings → API Keys, with every change checked by a real API call."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ARTIFACTS, PASSWORD, Server

KEY_RE = re.compile(r"^sk_live_[0-9A-Za-z]{43}$")
EVIL = "CI <script>window.pwned=1</script>"


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/dashboard/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def keys_url(server: Server) -> str:
    return f"/dashboard/projects/{server.project_id}/settings/api-keys"


def screenshots(page: Page, name: str) -> None:
    """Wide and narrow shots of the current page, for people to look at (CI artifacts)."""
    for label, width in (("wide", 1360), ("narrow", 390)):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": 1360, "height": 900})


def call(server: Server, secret: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/v1/projects/{server.project_id}",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )


def test_project_keys_as_the_guide_walks_through_them(page: Page, server: Server) -> None:
    sign_in(page, server.email)
    expect(page).to_have_url(re.compile(keys_url(server) + "$"))
    expect(page.get_by_role("heading", name="API Keys", exact=True)).to_be_visible()
    expect(page.locator("#key-count")).to_have_text("0 of 10 keys")

    # The dialog opens from the keyboard, Escape closes it and focus returns to the button.
    create = page.get_by_role("button", name="Create API Key")
    create.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Create API Key")
    expect(dialog).to_be_visible()
    expect(page.get_by_label("Name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(create).to_be_focused()

    # Name and permissions; checking knowledge:write checks and locks knowledge:read.
    create.click()
    page.get_by_label("Name").fill(EVIL)
    write = dialog.get_by_role("checkbox", name=re.compile("^knowledge:write"))
    read = dialog.get_by_role("checkbox", name=re.compile("^knowledge:read"))
    write.check()
    expect(read).to_be_checked()
    expect(read).to_be_disabled()
    write.uncheck()
    expect(read).to_be_enabled()
    write.check()
    dialog.get_by_role("checkbox", name=re.compile("^project:read")).check()
    expect(dialog.get_by_role("checkbox", name=re.compile("^org:"))).to_have_count(0)
    expect(dialog.get_by_role("checkbox", name=re.compile("^api_key:"))).to_have_count(0)
    screenshots(page, "create-dialog")
    page.get_by_role("button", name="Create Key").click()

    # The one-time secret, its warning, and the copy button.
    shown = page.get_by_role("dialog", name="Your new API key")
    expect(shown).to_be_visible()
    expect(shown).to_contain_text("won't be shown again")
    secret = page.locator("#new-secret").input_value()
    assert KEY_RE.match(secret)
    shown.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == secret
    screenshots(page, "secret-dialog")

    # The copied key works with a real HTTP call.
    response = call(server, copied)
    assert response.status_code == 200, response.text

    # Closing the dialog leaves nothing of the secret in the page.
    shown.get_by_role("button", name="I have stored it, close").click()
    expect(page.locator("#flash")).to_contain_text("API key created")
    assert secret not in page.content()
    assert page.evaluate("window.pwned") is None  # the name is text, never markup
    row = page.locator("tr", has_text="CI <script>")
    expect(row.locator(".key-name")).to_have_text(EVIL)
    expect(row.locator("code.secret")).to_have_text("••••••••••••" + secret[-4:])
    for badge in ("knowledge:read", "knowledge:write", "project:read"):
        expect(row.locator(".badge", has_text=badge)).to_be_visible()
    expect(page.locator("#key-count")).to_have_text("1 of 10 keys")
    page.wait_for_timeout(1500)  # last-used times are flushed once a second here
    page.reload()
    expect(row.locator(".last-used")).to_have_text(re.compile("just now|minute"))
    screenshots(page, "project-keys")

    # Reveal asks for the password again when it was not entered in the last 5 minutes.
    server.age_password_confirmation()
    row.get_by_role("button", name=re.compile("^Reveal secret")).click()
    reauth = page.get_by_role("dialog", name="Confirm your password")
    expect(reauth).to_be_visible()
    reauth.get_by_label("Password").fill("not my password")
    reauth.get_by_role("button", name="Confirm").click()
    expect(reauth.get_by_role("alert")).to_have_text("Wrong password; try again.")
    reauth.get_by_label("Password").fill(PASSWORD)
    reauth.get_by_role("button", name="Confirm").click()
    expect(reauth).to_be_hidden()
    expect(row.locator("code.secret")).to_have_text(secret)
    row.get_by_role("button", name=re.compile("^Hide secret")).click()
    expect(row.locator("code.secret")).to_have_text("••••••••••••" + secret[-4:])
    assert secret not in page.content()

    # The copy icon copies without showing (the password is fresh now: no question asked).
    page.evaluate("navigator.clipboard.writeText('')")
    row.get_by_role("button", name=re.compile("^Copy secret")).click()
    expect(page.locator("#flash")).to_contain_text("copied to the clipboard")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert secret not in page.content()

    # The usage page: requests per hour as inline SVG, and the permissions used.
    row.get_by_role("link", name=re.compile("^Usage of")).click()
    expect(page.get_by_role("img", name=re.compile("Requests per hour"))).to_be_visible()
    expect(page.locator("figcaption")).to_contain_text("1 success")
    screenshots(page, "key-usage")
    page.go_back()

    # Edit: rename and remove permissions in place; the very next API call gets 403.
    row.get_by_role("button", name=re.compile("^Edit")).click()
    edit = page.get_by_role("dialog", name="Edit API Key")
    expect(edit.get_by_label("Name")).to_have_value(EVIL)
    expect(edit.get_by_role("checkbox", name=re.compile("^knowledge:read"))).to_be_disabled()
    edit.get_by_label("Name").fill("Analytics Export Script")
    edit.get_by_role("checkbox", name=re.compile("^project:read")).uncheck()
    edit.get_by_role("button", name="Update Permissions").click()
    expect(page.locator("#flash")).to_contain_text("applies to the very next request")
    row = page.locator("tr", has_text="Analytics Export Script")
    expect(row.locator(".badge", has_text="project:read")).to_have_count(0)
    response = call(server, secret)
    assert response.status_code == 403
    assert response.json() | {"message": ""} == {
        "error": "insufficient_permissions",
        "message": "",
        "required": "project:read",
    }

    # Delete with confirmation; the very next API call gets 401.
    row.get_by_role("button", name=re.compile("^Delete")).click()
    confirm = page.get_by_role("dialog", name="Delete API key?")
    expect(confirm).to_contain_text("Analytics Export Script")
    confirm.get_by_role("button", name="Delete key").click()
    expect(page.locator("#flash")).to_contain_text("now fail with 401")
    expect(page.locator("tr", has_text="Analytics Export Script")).to_have_count(0)
    response = call(server, secret)
    assert response.status_code == 401
    assert response.json()["error"] == "api_key_revoked"


def test_changes_without_the_csrf_token_are_refused(page: Page, server: Server) -> None:
    sign_in(page, server.email)
    page.goto(keys_url(server))
    # A forged request from a script that lacks the session's CSRF token.
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', credentials: 'same-origin',
             headers: {'Content-Type': 'application/json'},
             body: JSON.stringify({name: 'forged', permissions: ['project:read']})})).status""",
        f"/v1/projects/{server.project_id}/api-keys",
    )
    assert status == 403
    # The page's own dialog with a wrong token shows the refusal and keeps what was typed.
    page.evaluate("document.querySelector('meta[name=csrf-token]').content = 'stale'")
    page.get_by_role("button", name="Create API Key").click()
    page.get_by_label("Name").fill("Kept after the error")
    page.get_by_role("checkbox", name=re.compile("^project:read")).check()
    page.get_by_role("button", name="Create Key").click()
    alert = page.locator("#key-error")
    expect(alert).to_contain_text("X-CSRF-Token")
    expect(page.get_by_label("Name")).to_have_value("Kept after the error")
    # An expired session says so and keeps the dialog as it was.
    page.context.clear_cookies()
    page.get_by_role("button", name="Create Key").click()
    expect(alert).to_contain_text("session has expired")
    expect(page.get_by_label("Name")).to_have_value("Kept after the error")
    sign_in(page, server.email)
    page.goto(keys_url(server))
    expect(page.locator("tr", has_text="forged")).to_have_count(0)
    expect(page.locator("tr", has_text="Kept after the error")).to_have_count(0)


def test_repeated_wrong_passwords_lock_the_sign_in(page: Page, server: Server) -> None:
    email = "locked@example.com"
    server.cli("bootstrap", "--email", email, "--password", PASSWORD, "--org", "Locked Org")
    for attempt in range(1, 5):
        sign_in(page, email, "wrong password")
        expect(page.get_by_role("alert")).to_contain_text(f"{5 - attempt} more attempt")
    sign_in(page, email, "wrong password")
    expect(page.get_by_role("alert")).to_have_text(
        "Too many failed sign-ins for this email. Try again in 15 minutes."
    )
    sign_in(page, email)  # the right password is refused too while locked
    expect(page.get_by_role("alert")).to_contain_text("Try again in")
    expect(page).to_have_url(re.compile("/dashboard/login"))


def test_a_lockout_by_somebody_else_spares_the_owners_browser(
    page: Page, browser: object, server: Server
) -> None:
    from playwright.sync_api import Browser

    email = "spared@example.com"
    server.cli("bootstrap", "--email", email, "--password", PASSWORD, "--org", "Spared Org")
    sign_in(page, email)  # the owner's browser: it keeps a device cookie
    expect(page).to_have_url(re.compile("/dashboard"))
    page.context.clear_cookies(name="keyplane_session")  # signed out; the device cookie stays

    assert isinstance(browser, Browser)
    elsewhere = browser.new_context(base_url=server.url)  # somebody else's browser
    try:
        attacker = elsewhere.new_page()
        for _ in range(5):
            sign_in(attacker, email, "wrong password")
        expect(attacker.get_by_role("alert")).to_have_text(
            "Too many failed sign-ins for this email. Try again in 15 minutes."
        )
    finally:
        elsewhere.close()

    sign_in(page, email)
    expect(page).not_to_have_url(re.compile("/dashboard/login"))
    expect(page.get_by_role("link", name=re.compile("API Keys"))).not_to_have_count(0)


def test_account_keys_are_account_wide(page: Page, server: Server) -> None:
    sign_in(page, server.email)
    page.get_by_role("link", name=re.compile(r"^Account . API Keys$")).click()
    expect(page.get_by_role("heading", name="Account API Keys")).to_be_visible()
    page.get_by_role("button", name="Create API Key").click()
    dialog = page.get_by_role("dialog", name="Create API Key")
    page.get_by_label("Name").fill("Ops automation")
    dialog.get_by_role("checkbox", name=re.compile("^api_key:write")).check()
    expect(dialog.get_by_role("checkbox", name=re.compile("^api_key:read"))).to_be_disabled()
    dialog.get_by_role("checkbox", name=re.compile("^project:read")).check()
    page.get_by_role("button", name="Create Key").dblclick()  # a double submit makes one key
    expect(page.get_by_role("dialog", name="Your new API key")).to_be_visible()
    secret = page.locator("#new-secret").input_value()
    assert KEY_RE.match(secret)
    assert call(server, secret).status_code == 200
    page.get_by_role("button", name="I have stored it, close").click()
    expect(page.locator("tr", has_text="Ops automation")).to_have_count(1)
    assert secret not in page.content()
    screenshots(page, "account-keys")


def test_members_invite_and_remove(page: Page, server: Server) -> None:
    email = "teammate@example.com"
    server.cli("bootstrap", "--email", email, "--password", PASSWORD, "--org", "Their own")
    sign_in(page, server.email)
    page.get_by_role("link", name=re.compile("Members$")).click()
    expect(page.get_by_role("heading", name="Members", exact=True)).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Organization role").select_option("o_admin")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("status")).to_contain_text("stays pending")
    expect(page.locator("tr", has_text=email)).to_contain_text("pending")
    screenshots(page, "members")

    # The teammate accepts; the owner then removes them after confirming.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, email)
    page.get_by_role("link", name=re.compile("^Invitations")).click()
    page.get_by_role("button", name="Accept").click()
    expect(page.get_by_role("status")).to_contain_text("you are now a member")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server.email)
    page.get_by_role("link", name=re.compile("Members$")).click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Remove {email}").click()
    expect(page.get_by_role("status")).to_contain_text("Member removed")
    expect(page.locator("tr", has_text=email)).to_have_count(0)
