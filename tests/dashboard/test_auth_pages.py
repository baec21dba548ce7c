"""Dashboard sign-in over real HTTP forms: CSRF on every form, cookie flags, lockout after
repeated wrong passwords, sign-out and password change."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select

from keyplane.adapters.sql.models import LoginThrottle
from keyplane.api.app import create_app
from keyplane.api.deps import DEVICE_COOKIE
from keyplane.dashboard.web import LOGIN_CSRF_COOKIE as LOGIN_CSRF
from keyplane.runtime import Runtime
from keyplane.services import accounts
from keyplane.settings import Settings
from tests.conftest import PASSWORD, World

LOGIN = "/dashboard/login"


def form_token(html: str, name: str = "csrf") -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, next_path: str = "/dashboard"
) -> httpx.Response:
    page = await client.get(LOGIN)
    return await client.post(
        LOGIN,
        data={
            "email": email,
            "password": password,
            "csrf": form_token(page.text),
            "next": next_path,
        },
    )


def set_cookies(response: httpx.Response, count: int | None = None) -> dict[str, str]:
    """Each cookie the response sets, by name, its header lower-cased."""
    cookies = {
        header.split("=", 1)[0]: header.lower()
        for header in response.headers.get_list("set-cookie")
    }
    assert count is None or len(cookies) == count, cookies
    return cookies


async def session_csrf(client: httpx.AsyncClient) -> str:
    page = await client.get("/dashboard/account/password")
    assert page.status_code == 200
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert found
    return found.group(1)


async def test_pages_need_a_session_and_come_back_after_sign_in(
    client: httpx.AsyncClient, world: World
) -> None:
    target = f"/dashboard/projects/{world.project_id}/settings/api-keys"
    response = await client.get(target)
    assert response.status_code == 303
    assert response.headers["location"] == f"{LOGIN}?next={target}"

    signed = await sign_in(client, world.email, next_path=target)
    assert signed.status_code == 303
    assert signed.headers["location"] == target
    for name, cookie in set_cookies(signed).items():
        if name == LOGIN_CSRF:
            continue
        assert "httponly" in cookie, name
        assert "samesite=lax" in cookie, name
        assert "path=/;" in cookie or cookie.endswith("path=/"), name
        assert "secure" not in cookie, name  # plain HTTP on loopback: never sent back
    assert set(set_cookies(signed)) >= {"keyplane_session", DEVICE_COOKIE}
    page = await client.get(target)
    assert page.status_code == 200
    assert "API Keys" in page.text


async def test_sign_in_never_redirects_off_the_dashboard(
    client: httpx.AsyncClient, world: World
) -> None:
    for evil in ("https://evil.example/", "//evil.example/x", "/dashboard//evil.example"):
        response = await sign_in(client, world.email, next_path=evil)
        assert response.headers["location"] == "/dashboard"


async def test_login_form_without_its_csrf_token_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    await client.get(LOGIN)  # sets the login CSRF cookie
    response = await client.post(
        LOGIN, data={"email": world.email, "password": PASSWORD, "csrf": "forged"}
    )
    assert response.status_code == 403
    assert "keyplane_session" not in response.headers.get("set-cookie", "")
    assert "expired" in response.text

    # A site that posts the form from elsewhere has neither the cookie nor the token.
    client.cookies.clear()
    response = await client.post(LOGIN, data={"email": world.email, "password": PASSWORD})
    assert response.status_code == 403


async def test_secure_cookie_over_https_and_behind_a_trusted_proxy(
    runtime: Runtime, settings: Settings, world: World
) -> None:

    app = create_app(runtime)
    body = {"email": world.email, "password": PASSWORD}
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://keyplane.test") as c:
        response = await c.post("/v1/session", json=body)
        assert all("secure" in cookie for cookie in set_cookies(response, 2).values())
    async with httpx.AsyncClient(transport=transport, base_url="http://keyplane.test") as c:
        claimed = {"X-Forwarded-Proto": "https"}
        response = await c.post("/v1/session", json=body, headers=claimed)
        # An untrusted claim.
        assert not any("secure" in cookie for cookie in set_cookies(response, 2).values())
    behind_proxy = await Runtime.start(
        settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]}), migrate=False
    )
    try:
        transport = httpx.ASGITransport(app=create_app(behind_proxy), client=("127.0.0.1", 5))
        async with httpx.AsyncClient(transport=transport, base_url="http://keyplane.test") as c:
            response = await c.post("/v1/session", json=body, headers=claimed)
            assert all("secure" in cookie for cookie in set_cookies(response, 2).values())
    finally:
        await behind_proxy.close()


async def test_repeated_wrong_passwords_lock_the_email_out_with_the_wait_time(
    client: httpx.AsyncClient, world: World
) -> None:
    for attempt in range(1, 5):
        response = await sign_in(client, world.email, "wrong password")
        assert response.status_code == 401
        left = 5 - attempt
        assert f"{left} more attempt" in response.text
    response = await sign_in(client, world.email, "wrong password")
    assert response.status_code == 429
    assert "Too many failed sign-ins for this email. Try again in 15 minutes." in response.text
    assert int(response.headers["Retry-After"]) > 800

    # Even the right password is refused while locked, in the form and in the JSON API.
    response = await sign_in(client, world.email)
    assert response.status_code == 429
    assert "keyplane_session" not in response.headers.get("set-cookie", "")
    api = await client.post("/v1/session", json={"email": world.email, "password": PASSWORD})
    assert api.status_code == 429
    assert api.json()["error"] == "login_locked"
    assert api.json()["retry_after"] > 800
    assert "Retry-After" in api.headers


async def test_unknown_emails_are_throttled_like_known_ones(
    client: httpx.AsyncClient, world: World
) -> None:
    """Otherwise the lockout would tell which emails have accounts."""
    for _ in range(5):
        response = await sign_in(client, "nobody@example.com", "whatever")
    assert response.status_code == 429
    assert (await sign_in(client, world.email)).status_code == 303  # others unaffected


async def test_a_successful_sign_in_resets_the_failure_count(
    client: httpx.AsyncClient, world: World
) -> None:
    for _ in range(4):
        await sign_in(client, world.email, "wrong password")
    assert (await sign_in(client, world.email)).status_code == 303
    response = await sign_in(client, world.email, "wrong password")
    assert "4 more attempts" in response.text


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world.email)
    token = await session_csrf(client)
    refused = await client.post("/dashboard/logout", data={"csrf": "forged"})
    assert refused.status_code == 403
    assert (await client.get("/dashboard/account/password")).status_code == 200

    session = client.cookies["keyplane_session"]
    response = await client.post("/dashboard/logout", data={"csrf": token})
    assert response.status_code == 303
    client.cookies.set("keyplane_session", session)  # a copy of the old cookie is dead too
    assert (await client.get("/dashboard/account/password")).status_code == 303


async def test_password_change(runtime: Runtime, client: httpx.AsyncClient, world: World) -> None:
    await sign_in(client, world.email)
    token = await session_csrf(client)
    other = httpx.AsyncClient(transport=client._transport, base_url="http://keyplane.test")
    async with other:
        await sign_in(other, world.email)
        form = {
            "current_password": "not it",
            "new_password": "a brand new secret",
            "confirm_password": "a brand new secret",
            "csrf": token,
        }
        wrong = await client.post("/dashboard/account/password", data=form)
        assert wrong.status_code == 401
        assert "current password is wrong" in wrong.text
        mismatch = await client.post(
            "/dashboard/account/password",
            data=form | {"current_password": PASSWORD, "confirm_password": "different"},
        )
        assert mismatch.status_code == 422
        forged = await client.post(
            "/dashboard/account/password",
            data=form | {"current_password": PASSWORD, "csrf": "forged"},
        )
        assert forged.status_code == 403
        done = await client.post(
            "/dashboard/account/password", data=form | {"current_password": PASSWORD}
        )
        assert done.status_code == 200
        assert "Password changed" in done.text
        # This session stays; the other one was signed out with the old password.
        assert (await client.get("/dashboard/account/password")).status_code == 200
        assert (await other.get("/dashboard/account/password")).status_code == 303
    client.cookies.clear()
    assert (await sign_in(client, world.email)).status_code == 401
    assert (await sign_in(client, world.email, "a brand new secret")).status_code == 303


# --- trusted devices: a lockout by somebody else does not lock out the owner's browser --------


def _browser(runtime: Runtime, address: str) -> httpx.AsyncClient:
    """Another browser (its own cookie jar) on another address, talking to the same server."""
    transport = httpx.ASGITransport(app=create_app(runtime), client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://keyplane.test")


async def _lock_out(browser: httpx.AsyncClient, email: str) -> httpx.Response:
    for _ in range(5):
        response = await sign_in(browser, email, "wrong password")
    return response


async def test_a_lockout_by_somebody_else_leaves_the_owners_browser_signing_in(
    client: httpx.AsyncClient, world: World
) -> None:
    assert (await sign_in(client, world.email)).status_code == 303  # the owner's browser
    device = client.cookies[DEVICE_COOKIE]
    client.cookies.delete("keyplane_session")  # the session ended; the device cookie stays

    async with _browser(world.runtime, "203.0.113.9") as attacker:
        locked = await _lock_out(attacker, world.email)
        assert locked.status_code == 429
        assert "Too many failed sign-ins for this email" in locked.text
        assert (await sign_in(attacker, world.email)).status_code == 429  # even with the password

    assert (await sign_in(client, world.email)).status_code == 303
    assert client.cookies[DEVICE_COOKIE] != device  # a fresh one with each sign-in
    # Revealing a secret asks for the password again: the same device, the same answer.
    token = await session_csrf(client)
    again = await client.post(
        "/v1/session/reauthenticate", json={"password": PASSWORD}, headers={"X-CSRF-Token": token}
    )
    assert again.status_code == 200
    # Over the JSON API too, for a browser holding a device cookie.
    api = await client.post("/v1/session", json={"email": world.email, "password": PASSWORD})
    assert api.status_code == 200


async def test_a_guessing_device_is_locked_out_on_its_own(
    client: httpx.AsyncClient, world: World
) -> None:
    assert (await sign_in(client, world.email)).status_code == 303
    locked = await _lock_out(client, world.email)
    assert locked.status_code == 429
    assert "Too many failed sign-ins from this browser. Try again in 15 minutes." in locked.text
    assert (await sign_in(client, world.email)).status_code == 429
    async with _browser(world.runtime, "198.51.100.7") as elsewhere:
        assert (await sign_in(elsewhere, world.email)).status_code == 303


async def test_a_device_cookie_counts_only_for_its_email_and_only_when_genuine(
    client: httpx.AsyncClient, world: World
) -> None:
    other = "second@example.com"
    async with world.runtime.transaction() as db:
        await accounts.create_user(db, other, PASSWORD)
    assert (await sign_in(client, world.email)).status_code == 303
    device = client.cookies[DEVICE_COOKIE]
    nonce, _, signature = device.partition(".")

    async with _browser(world.runtime, "203.0.113.9") as attacker:
        assert (await _lock_out(attacker, other)).status_code == 429
        assert (await _lock_out(attacker, world.email)).status_code == 429
        for cookie in (
            device,  # the owner's device cookie, for another email
            f"{nonce[::-1]}.{signature}",  # another nonce under its signature
            f"{nonce}.{signature[:-2]}AA",  # a forged signature
        ):
            attacker.cookies.set(DEVICE_COOKIE, cookie)
            email = other if cookie == device else world.email
            refused = await sign_in(attacker, email)
            assert refused.status_code == 429, cookie
            assert "for this email" in refused.text


async def test_the_device_cookie_lasts_a_year(client: httpx.AsyncClient, world: World) -> None:
    response = await sign_in(client, world.email)
    assert f"max-age={365 * 86400}" in set_cookies(response)[DEVICE_COOKIE]


async def test_a_cookie_that_is_not_ours_is_an_unknown_browser_not_an_error(
    client: httpx.AsyncClient, world: World
) -> None:
    for raw in ('"a.\\351"', "a." + "b" * 300, ".", "no-dot"):  # \351: a Latin-1 character
        client.cookies.clear()
        page = await client.get(LOGIN)
        response = await client.post(
            LOGIN,
            data={"email": world.email, "password": "wrong", "csrf": form_token(page.text)},
            headers={"Cookie": f"{LOGIN_CSRF}={client.cookies[LOGIN_CSRF]}; {DEVICE_COOKIE}={raw}"},
        )
        assert response.status_code == 401, raw
    async with world.runtime.sessions() as db:
        counted = await db.scalar(select(LoginThrottle.failures))
    assert counted == 4  # all against the email


async def test_a_name_without_at_sign_is_refused_and_not_counted(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await sign_in(client, "admin", "guess")
    assert response.status_code == 422
    assert "Enter the email address you sign in with." in response.text
    async with world.runtime.sessions() as db:
        assert await db.scalar(select(func.count()).select_from(LoginThrottle)) == 0


async def test_a_password_change_ends_every_other_browsers_trust(
    client: httpx.AsyncClient, world: World
) -> None:
    new_password = "a brand new secret"
    async with _browser(world.runtime, "198.51.100.7") as laptop:
        assert (await sign_in(laptop, world.email)).status_code == 303  # trusted, then...
        assert (await sign_in(client, world.email)).status_code == 303
        token = await session_csrf(client)
        changed = await client.post(
            "/dashboard/account/password",
            data={
                "current_password": PASSWORD,
                "new_password": new_password,
                "confirm_password": new_password,
                "csrf": token,
            },
        )
        assert changed.status_code == 200
        assert DEVICE_COOKIE in set_cookies(changed)  # this browser stays trusted
        async with _browser(world.runtime, "203.0.113.9") as attacker:
            assert (await _lock_out(attacker, world.email)).status_code == 429
        # The laptop's cookie was for the old password: an unknown browser now.
        assert (await sign_in(laptop, world.email, new_password)).status_code == 429
        client.cookies.delete("keyplane_session")
        assert (await sign_in(client, world.email, new_password)).status_code == 303


async def test_wrong_current_passwords_at_a_password_change_count_too(
    client: httpx.AsyncClient, world: World
) -> None:
    # Otherwise a borrowed session could guess the password there without limit.
    assert (await sign_in(client, world.email)).status_code == 303
    token = await session_csrf(client)
    form = {"new_password": "x" * 20, "confirm_password": "x" * 20, "csrf": token}
    for _ in range(4):
        wrong = await client.post(
            "/dashboard/account/password", data=form | {"current_password": "guess"}
        )
        assert wrong.status_code == 401
    locked = await client.post(
        "/dashboard/account/password", data=form | {"current_password": "guess"}
    )
    assert locked.status_code == 429
    assert "Too many failed sign-ins from this browser" in locked.text
    assert int(locked.headers["Retry-After"]) > 800
