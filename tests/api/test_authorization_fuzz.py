"""Fuzzing the Authorization header of a protected endpoint (DESIGN §4).

Whatever a client puts in the header, the answer is a 401 or 403 with a JSON error body of the
documented shape, a correct `WWW-Authenticate` header on 401s, and never any part of the real
key's secret; only the real key itself gets a 200.

The tests are `async` hypothesis tests: pytest-asyncio runs every example on the event loop of
the function-scoped `client`/`world` fixtures, which are built once per test (hence the
suppressed `function_scoped_fixture` health check; the examples only read).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyplane.domain.keyformat import BASE62, KEY_LENGTH, checksum
from keyplane.settings import Settings
from tests.conftest import World, bearer

# DESIGN §4: the codes an authentication/authorization failure may carry.
AUTH_CODES = {
    401: {
        "missing_authorization",
        "malformed_authorization",
        "malformed_api_key",
        "invalid_api_key",
        "api_key_revoked",
        "api_key_expired",
        "wrong_environment",
    },
    403: {"project_mismatch", "insufficient_permissions", "ip_not_allowed"},
}
REALM = 'Bearer realm="keyplane"'
INVALID_TOKEN = 'Bearer realm="keyplane", error="invalid_token"'
PREFIX = len("sk_live_")
# A window this long of ~6 bits per character cannot match by chance (2**-47 per position).
LEAK_WINDOW = 8

fuzz = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(name="settings")
def throttle_out_of_the_way(settings: Settings) -> Settings:
    """The conftest settings with the failed-lookup throttle (tested on its own elsewhere)
    out of the way: here every well-formed unknown key must reach the 401 it is about."""
    return settings.model_copy(update={"auth_failures_per_minute": 1_000_000})


@pytest.fixture
async def secret(world: World) -> str:
    """A live project key that may read the project and its conversations."""
    return await world.project_key("project:read", "conversation:read")


def paths(world: World) -> st.SearchStrategy[str]:
    base = f"/v1/projects/{world.project_id}"
    return st.sampled_from([base, base + "/conversations"])


def is_real(value: bytes, secret: str) -> bool:
    scheme, _, token = value.decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and token == secret


def assert_no_leak(response: httpx.Response, secret: str) -> None:
    """Neither the body nor any header carries a run of the key's secret part."""
    shown = response.text + json.dumps(dict(response.headers))
    hidden = secret[PREFIX:]
    for start in range(len(hidden) - LEAK_WINDOW + 1):
        fragment = hidden[start : start + LEAK_WINDOW]
        assert fragment not in shown, f"secret fragment {fragment!r} echoed: {response.text}"


def assert_auth_error(response: httpx.Response, secret: str) -> dict[str, Any]:
    """The response is a documented 401/403 error that leaks nothing."""
    assert response.status_code in AUTH_CODES, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict)
    assert body["error"] in AUTH_CODES[response.status_code], body
    assert isinstance(body["message"], str)
    assert body["message"].strip()
    if response.status_code == 401:
        expected = REALM if body["error"] == "missing_authorization" else INVALID_TOKEN
        assert response.headers["www-authenticate"] == expected
    else:
        assert "www-authenticate" not in response.headers
    assert_no_leak(response, secret)
    return body


async def send(client: httpx.AsyncClient, path: str, value: bytes | None) -> httpx.Response:
    headers = None if value is None else {"Authorization": value}
    return await client.get(path, headers=headers)


async def check(client: httpx.AsyncClient, path: str, value: bytes, secret: str) -> None:
    response = await send(client, path, value)
    if is_real(value, secret):
        assert response.status_code == 200, response.text
    else:
        assert_auth_error(response, secret)


# --- strategies ----------------------------------------------------------------------------------
printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
key_chars = st.sampled_from(BASE62)


def mutated(secret: str) -> st.SearchStrategy[str]:
    """The real key with one thing wrong, the way people break keys when copying them."""
    positions = st.integers(0, KEY_LENGTH - 1)
    return st.one_of(
        st.tuples(positions, key_chars).map(lambda p: secret[: p[0]] + p[1] + secret[p[0] + 1 :]),
        st.integers(0, KEY_LENGTH - 1).map(lambda n: secret[:n]),
        st.integers(1, KEY_LENGTH - 1).map(lambda n: secret[n:]),
        positions.map(lambda n: secret[:n] + secret[n + 1 :]),
        st.tuples(positions, st.characters()).map(lambda p: secret[: p[0]] + p[1] + secret[p[0] :]),
        st.text(max_size=10).map(lambda s: secret + s),
        st.text(" \t\r\n\\n", min_size=1, max_size=3).map(lambda s: s + secret + s),
        st.sampled_from(
            [
                secret.upper(),
                secret.lower(),
                secret.swapcase(),
                "sk_test_" + secret[PREFIX:],
                secret.replace("_", "-"),
                secret + secret,
                f'"{secret}"',
                f"<{secret}>",
                secret[:-6] + checksum(secret[:-6])[::-1],
            ]
        ),
    )


@st.composite
def unknown_keys(draw: st.DrawFn) -> str:
    """Well-formed keys with a valid checksum that were never issued (high-entropy bodies)."""
    seed = draw(st.binary(min_size=8, max_size=8))
    number = int.from_bytes(hashlib.sha512(seed).digest(), "big")
    random_part = ""
    for _ in range(37):
        number, digit = divmod(number, 62)
        random_part += BASE62[digit]
    body = draw(st.sampled_from(["sk_live_", "sk_test_"])) + random_part
    return body + checksum(body)


def encoded(text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Text as a client would put it on the wire: latin-1 if possible, else UTF-8 bytes (which
    the server then reads as latin-1 mojibake, as a real server would)."""

    def encode(value: str) -> bytes:
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            return value.encode("utf-8")

    return text.map(encode)


schemes = st.sampled_from(
    ["Basic", "Token", "Digest", "ApiKey", "Bearer:", "Bearer=", "Bearer\t", "Bearers", "OAuth"]
)


# --- fuzz tests ----------------------------------------------------------------------------------
@fuzz
@given(data=st.data())
async def test_arbitrary_header_values(
    client: httpx.AsyncClient, world: World, secret: str, data: st.DataObject
) -> None:
    """Printable text, latin-1 bytes, arbitrary Unicode, empty and whitespace-only values."""
    value = data.draw(
        st.one_of(
            encoded(st.text(printable, max_size=200)),
            st.binary(max_size=200),
            encoded(st.text(max_size=100)),
            encoded(st.text(" \t\r\n", max_size=6)),
            encoded(st.text(printable, max_size=100).map(lambda s: "Bearer " + s)),
            st.binary(max_size=100).map(lambda b: b"Bearer " + b),
        ),
        label="authorization",
    )
    await check(client, data.draw(paths(world)), value, secret)


@fuzz
@given(data=st.data())
async def test_mutated_keys(
    client: httpx.AsyncClient, world: World, secret: str, data: st.DataObject
) -> None:
    """The real key, broken one way, sent with the right scheme."""
    token = data.draw(mutated(secret), label="token")
    scheme = data.draw(st.sampled_from(["Bearer", "bearer", "BEARER"]), label="scheme")
    value = f"{scheme} {token}".encode()
    await check(client, data.draw(paths(world)), value, secret)


@fuzz
@given(data=st.data())
async def test_other_schemes_and_keys_without_a_scheme(
    client: httpx.AsyncClient, world: World, secret: str, data: st.DataObject
) -> None:
    """Basic/Token/…, the key with no scheme at all, or the key followed by something."""
    value = data.draw(
        st.one_of(
            st.tuples(schemes, st.sampled_from([" ", "  ", ""]), st.sampled_from([secret, ""])).map(
                "".join
            ),
            st.tuples(schemes, st.text(printable, max_size=60)).map(" ".join),
            st.just(secret),
            mutated(secret),
            st.tuples(st.just(secret), st.text(printable, max_size=20)).map(" ".join),
        ).map(lambda s: s.encode("utf-8")),
        label="authorization",
    )
    await check(client, data.draw(paths(world)), value, secret)


@settings(fuzz, max_examples=25)
@given(data=st.data())
async def test_very_long_values(
    client: httpx.AsyncClient, world: World, secret: str, data: st.DataObject
) -> None:
    prefix = data.draw(st.sampled_from(["", "Bearer ", "Bearer sk_live_", "Basic ", secret]))
    filler = data.draw(st.sampled_from(["A", "0", " ", "_", "é", secret]))
    length = data.draw(st.integers(1_000, 10_000), label="length")
    value = (prefix + filler * (length // len(filler)))[:length]
    await check(client, data.draw(paths(world)), value.encode("utf-8"), secret)


@settings(fuzz, max_examples=30)
@given(data=st.data())
async def test_well_formed_keys_that_were_never_issued(
    client: httpx.AsyncClient, world: World, secret: str, data: st.DataObject
) -> None:
    """Shaped right, checksum right, but unknown: one lookup, then 401 invalid_api_key."""
    key = data.draw(unknown_keys(), label="key")
    response = await send(client, data.draw(paths(world)), f"Bearer {key}".encode())
    body = assert_auth_error(response, secret)
    assert body["error"] == "invalid_api_key"
    assert key[PREFIX:] not in response.text


# --- explicit examples ---------------------------------------------------------------------------
# (Authorization header, status, error code, a phrase the message must contain). `{key}` is the
# real key, `{random}` its part after the prefix. One test walks the whole table (a runtime per
# test is the expensive part) and reports every row that does not hold.
EXAMPLES: list[tuple[str, int, str, str]] = [
    ("Basic abc", 401, "malformed_authorization", "Basic"),
    ("Basic " + "=" * 100_000, 401, "malformed_authorization", "Basic"),
    ("Token {key}", 401, "malformed_authorization", "Token"),
    ("abc", 401, "malformed_authorization", "Bearer <key>"),
    ("", 401, "malformed_authorization", "Bearer <key>"),
    (" ", 401, "malformed_authorization", "Bearer <key>"),
    ("\t", 401, "malformed_authorization", "Bearer <key>"),
    ("Bearer", 401, "malformed_authorization", "Bearer <key>"),
    ("Bearer ", 401, "malformed_authorization", "Bearer <key>"),
    ("Bëarer {key}", 401, "malformed_authorization", "Bearer <key>"),
    ("\x00", 401, "malformed_authorization", "Bearer <key>"),
    ("Bearer {key}\n", 401, "malformed_api_key", "line break"),
    ("Bearer {key}\r\n", 401, "malformed_api_key", "line break"),
    ("Bearer  {key}", 401, "malformed_api_key", "whitespace"),
    ("Bearer {key}\\n", 401, "malformed_api_key", "backslash"),
    ("Bearer {truncated}", 401, "malformed_api_key", "length 50 of 51"),
    ("Bearer sk_live_", 401, "malformed_api_key", "length 8 of 51"),
    ("Bearer {key}x", 401, "malformed_api_key", "length 52 of 51"),
    ("Bearer {key}" + "0" * 10_000, 401, "malformed_api_key", "length 10051 of 51"),
    ("Bearer " + "A" * 100_000, 401, "malformed_api_key", "sk_live_ or sk_test_"),
    ("Bearer sk_prod_{random}", 401, "malformed_api_key", "sk_live_ or sk_test_"),
    ("Bearer {non_ascii}", 401, "malformed_api_key", "non-ASCII"),
    ("Bearer {bad_char}", 401, "malformed_api_key", "position 30"),
    ("Bearer {typo}", 401, "invalid_api_key", "was it copied completely?"),
    ("Bearer sk_test_{random}", 401, "invalid_api_key", "was it copied completely?"),
    ("Bearer {unknown}", 401, "invalid_api_key", "No such API key"),
]


def _fill(template: str, secret: str) -> bytes:
    last = "A" if secret[-1] != "A" else "B"
    body = "sk_live_" + "Q" * 37
    return template.format(
        key=secret,
        random=secret[PREFIX:],
        truncated=secret[:-1],
        typo=secret[:-1] + last,
        non_ascii=secret[:20] + "ü" + secret[21:],
        bad_char=secret[:29] + "-" + secret[30:],
        unknown=body + checksum(body),
    ).encode("utf-8")


async def test_documented_examples(client: httpx.AsyncClient, world: World, secret: str) -> None:
    wrong: list[str] = []
    for template, status, code, phrase in EXAMPLES:
        response = await send(client, _project(world), _fill(template, secret))
        body = assert_auth_error(response, secret)
        if (response.status_code, body["error"]) != (status, code) or phrase not in body["message"]:
            wrong.append(f"{template[:40]!r}: {response.status_code} {body}")
    assert wrong == []


def _project(world: World) -> str:
    return f"/v1/projects/{world.project_id}"


async def test_the_real_key_passes(client: httpx.AsyncClient, world: World, secret: str) -> None:
    for suffix in ("", "/conversations"):
        for scheme in ("Bearer", "bearer", "BEARER"):
            value = f"{scheme} {secret}".encode()
            response = await send(client, _project(world) + suffix, value)
            assert response.status_code == 200, response.text


async def test_missing_header(client: httpx.AsyncClient, world: World, secret: str) -> None:
    for suffix in ("", "/conversations"):
        response = await send(client, _project(world) + suffix, None)
        body = assert_auth_error(response, secret)
        assert response.status_code == 401
        assert body["error"] == "missing_authorization"
        assert response.headers["www-authenticate"] == 'Bearer realm="keyplane"'


async def test_a_key_without_the_bearer_scheme_is_not_echoed(
    client: httpx.AsyncClient, world: World, secret: str
) -> None:
    """A key pasted as the whole header, or followed by something, must not come back in the
    message, not even partly: the message may name the scheme it found, and here the
    'scheme' is the secret."""
    for value in (secret, f"{secret} x", f"{secret}  ", f"{secret[:30]} {secret[30:]}"):
        response = await send(client, _project(world), value.encode())
        body = assert_auth_error(response, secret)  # asserts nothing of the key is echoed
        assert body["error"] == "malformed_authorization"


async def test_a_key_of_another_project_is_403_not_401(
    client: httpx.AsyncClient, world: World, secret: str
) -> None:
    other = await world.project()
    response = await client.get(f"/v1/projects/{other}", headers=bearer(secret))
    body = assert_auth_error(response, secret)
    assert response.status_code == 403
    assert body["error"] == "project_mismatch"
    assert str(other) in body["message"]
    assert str(world.project_id) in body["message"]
