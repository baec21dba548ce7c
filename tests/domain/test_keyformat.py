"""Properties of the key format of DESIGN §2: shape, checksum, and what parse tells a user.

The checksum is what lets the server reject typos and truncation without a database lookup, so
these tests check that it really catches every single-character typo, at every position, and
that no diagnosis ever echoes the secret part of a key.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
import time
import zlib

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from keyplane.domain import keyformat
from keyplane.domain.errors import InvalidApiKey, MalformedApiKey
from keyplane.domain.keyformat import (
    BASE62,
    KEY_LENGTH,
    Mode,
    ParsedKey,
    base62_encode,
    checksum,
    generate,
    hint,
    looks_like_key,
    parse,
)

KEY_RE = re.compile(r"^sk_(live|test)_[0-9A-Za-z]{43}$")
# An alphabet written out independently of the module under test.
ALPHABET = "".join(map(str, range(10))) + "".join(chr(c) for c in range(65, 91))
ALPHABET += ALPHABET[10:].lower()
PREFIX = 8
CHECKSUM_START = KEY_LENGTH - 6

modes = st.sampled_from(list(Mode))


def b62(number: int, width: int) -> str:
    """Fixed-width base62, written independently of keyformat.base62_encode."""
    digits = ""
    while number:
        number, digit = divmod(number, 62)
        digits = ALPHABET[digit] + digits
    return digits.rjust(width, "0")


def b62_decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + ALPHABET.index(char)
    return value


def make_key(mode: Mode, random_part: str) -> str:
    """A key built the way DESIGN §2 describes it, independently of `generate`."""
    body = f"sk_{mode.value}_{random_part}"
    return body + b62(zlib.crc32(body.encode()), 6)


@st.composite
def keys(draw: st.DrawFn) -> str:
    """Valid keys with a high-entropy random part derived from drawn bytes (hypothesis alone
    likes low-entropy strings such as 'AAAA…', which would make 'is the secret echoed?'
    checks meaningless)."""
    seed = draw(st.binary(min_size=16, max_size=16))
    number = int.from_bytes(hashlib.sha512(seed).digest(), "big")
    return make_key(draw(modes), b62(number, 64)[-37:])


def assert_no_secret(message: str, key: str) -> None:
    """No run of 6 or more characters of the random part appears in `message`."""
    secret = key[PREFIX:]
    for start in range(len(secret) - 5):
        assert secret[start : start + 6] not in message, (message, secret)


def parse_outcome(raw: str) -> ParsedKey | MalformedApiKey | InvalidApiKey:
    """What parse does with `raw`; any other exception propagates and fails the test."""
    try:
        return parse(raw)
    except (MalformedApiKey, InvalidApiKey) as err:
        return err


def assert_rejected(raw: str, error: type[Exception]) -> Exception:
    with pytest.raises((MalformedApiKey, InvalidApiKey)) as info:
        parse(raw)
    assert type(info.value) is error, (raw, info.value)
    return info.value


# --- known answers: these fail if the format drifts --------------------------------------------
def test_checksum_of_a_fixed_body_is_crc32_in_six_base62_chars() -> None:
    body = "sk_live_" + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZa"
    assert zlib.crc32(body.encode()) == 0xCC81BA9E
    assert b62(0xCC81BA9E, 6) == "3kCLsM"
    assert checksum(body) == "3kCLsM"
    assert parse(body + "3kCLsM") == ParsedKey(value=body + "3kCLsM", mode=Mode.LIVE)
    assert hint(body + "3kCLsM") == "CLsM"


def test_test_mode_key_with_the_same_random_part_has_another_checksum() -> None:
    random_part = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZa"
    live, test = make_key(Mode.LIVE, random_part), make_key(Mode.TEST, random_part)
    assert live[-6:] != test[-6:]
    assert parse(test).mode is Mode.TEST
    # Swapping only the prefix of a live key is a look-alike, not a test key.
    err = assert_rejected("sk_test_" + live[PREFIX:], InvalidApiKey)
    assert "was it copied completely?" in str(err)


# --- generation --------------------------------------------------------------------------------
@given(modes)
def test_generated_keys_have_the_public_shape_and_parse_to_their_mode(mode: Mode) -> None:
    key = generate(mode)
    assert KEY_RE.fullmatch(key)
    assert len(key) == KEY_LENGTH == 51
    assert key.startswith(f"sk_{mode.value}_")
    assert key[-6:] == b62(zlib.crc32(key[:-6].encode()), 6)
    assert parse(key) == ParsedKey(value=key, mode=mode)
    assert looks_like_key(key)
    assert hint(key) == key[-4:]


def test_generated_keys_are_distinct_and_use_the_whole_alphabet() -> None:
    generated = [generate(Mode.LIVE) for _ in range(2000)]
    assert len(set(generated)) == len(generated)
    used = set("".join(k[PREFIX:CHECKSUM_START] for k in generated))
    assert used == set(ALPHABET)


@given(keys())
def test_independently_built_keys_parse(key: str) -> None:
    assert KEY_RE.fullmatch(key)
    assert parse(key).mode is (Mode.LIVE if key.startswith("sk_live_") else Mode.TEST)


# --- typos -------------------------------------------------------------------------------------
@given(keys(), st.integers(PREFIX, KEY_LENGTH - 1), st.sampled_from(ALPHABET))
def test_any_single_character_substitution_fails_the_checksum(
    key: str, position: int, replacement: str
) -> None:
    assume(key[position] != replacement)
    assert looks_like_key(key)
    typo = key[:position] + replacement + key[position + 1 :]
    assert KEY_RE.fullmatch(typo)
    err = assert_rejected(typo, InvalidApiKey)
    assert str(err) == "This is not a keyplane key; was it copied completely?"
    assert not looks_like_key(typo)


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("fill", ["0", "z", "random"])
def test_every_single_substitution_at_every_position_is_caught(mode: Mode, fill: str) -> None:
    """Exhaustive: 43 positions x 61 other characters, for three random parts, with the
    module's own checksum (whatever it is, it must catch every single substitution)."""
    random_part = generate(mode)[PREFIX:CHECKSUM_START] if fill == "random" else fill * 37
    body = mode.prefix + random_part
    key = body + checksum(body)
    assert looks_like_key(key)
    missed = []
    for position in range(PREFIX, KEY_LENGTH):
        for char in ALPHABET:
            if char == key[position]:
                continue
            typo = key[:position] + char + key[position + 1 :]
            if looks_like_key(typo):
                missed.append(typo)
    assert missed == []


@given(keys(), st.integers(0, PREFIX - 1), st.characters(codec="ascii"))
def test_a_typo_in_the_prefix_is_malformed(key: str, position: int, replacement: str) -> None:
    assume(key[position] != replacement)
    typo = key[:position] + replacement + key[position + 1 :]
    err = assert_rejected(typo, MalformedApiKey)
    assert_no_secret(str(err), key)


@given(keys(), st.integers(PREFIX, KEY_LENGTH - 1))
def test_two_adjacent_characters_swapped_is_caught(key: str, position: int) -> None:
    assume(position + 1 < KEY_LENGTH and key[position] != key[position + 1])
    swapped = key[:position] + key[position + 1] + key[position] + key[position + 2 :]
    assert_rejected(swapped, InvalidApiKey)


@given(keys(), st.integers(PREFIX, KEY_LENGTH - 1), st.characters(codec="ascii"))
def test_a_character_outside_base62_names_its_position(
    key: str, position: int, replacement: str
) -> None:
    assume(replacement not in ALPHABET and not replacement.isspace())
    assume(not (position == KEY_LENGTH - 1 and replacement == "\\"))
    bad = key[:position] + replacement + key[position + 1 :]
    err = assert_rejected(bad, MalformedApiKey)
    assert f"position {position + 1}" in str(err)
    assert_no_secret(str(err), key)


# --- truncation, extension, whitespace ---------------------------------------------------------
@given(keys(), st.integers(PREFIX, KEY_LENGTH - 1))
@example(key=make_key(Mode.LIVE, "a" * 37), length=50)
def test_truncation_says_length_n_of_51(key: str, length: int) -> None:
    err = assert_rejected(key[:length], MalformedApiKey)
    assert f"length {length} of 51" in str(err)
    assert_no_secret(str(err), key)


@given(keys(), st.integers(0, PREFIX - 1))
def test_truncation_inside_the_prefix_is_malformed(key: str, length: int) -> None:
    err = assert_rejected(key[:length], MalformedApiKey)
    assert "sk_live_ or sk_test_" in str(err)


@given(keys(), st.integers(1, KEY_LENGTH - 1))
def test_losing_the_first_characters_is_malformed(key: str, dropped: int) -> None:
    err = assert_rejected(key[dropped:], MalformedApiKey)
    assert_no_secret(str(err), key)


@given(keys(), st.text(alphabet=ALPHABET + "_-.", min_size=1, max_size=60))
def test_anything_appended_is_too_long(key: str, suffix: str) -> None:
    err = assert_rejected(key + suffix, MalformedApiKey)
    assert f"length {len(key) + len(suffix)} of 51" in str(err)
    assert_no_secret(str(err), key)


whitespace = st.text(st.characters(categories=["Zs"]) | st.sampled_from("\t\v\f"), min_size=1)
line_breaks = st.text(st.sampled_from(" \t\r\n"), min_size=1).filter(
    lambda s: "\n" in s or "\r" in s
)


@given(keys(), whitespace, st.sampled_from(["before", "after", "both"]))
def test_surrounding_whitespace_is_named(key: str, space: str, where: str) -> None:
    raw = {"before": space + key, "after": key + space, "both": space + key + space}[where]
    err = assert_rejected(raw, MalformedApiKey)
    assert "whitespace" in str(err)
    assert_no_secret(str(err), key)


@given(keys(), line_breaks, st.booleans())
@example(key=make_key(Mode.LIVE, "b" * 37), space="\n", after=True)
@example(key=make_key(Mode.TEST, "c" * 37), space="\r\n", after=True)
def test_a_line_break_is_named(key: str, space: str, after: bool) -> None:
    raw = key + space if after else space + key
    err = assert_rejected(raw, MalformedApiKey)
    assert "line break" in str(err)
    assert_no_secret(str(err), key)


@pytest.mark.parametrize("literal", ["\\n", "\\r", "\\r\\n"])
def test_a_literal_backslash_n_from_a_dotenv_file_is_named(literal: str) -> None:
    key = generate(Mode.LIVE)
    err = assert_rejected(key + literal, MalformedApiKey)
    assert "backslash" in str(err)


@given(keys(), st.integers(PREFIX, KEY_LENGTH - 1), st.characters(min_codepoint=128))
def test_non_ascii_is_named(key: str, position: int, char: str) -> None:
    assume(not char.isspace())
    raw = key[:position] + char + key[position + 1 :]
    err = assert_rejected(raw, MalformedApiKey)
    assert "non-ASCII" in str(err)
    assert_no_secret(str(err), key)


@given(st.sampled_from(["pk_live_", "sk_prod_", "sk-live-", "SK_LIVE_", "rk_test_", "sk_tset_"]))
def test_an_unknown_prefix_is_named(prefix: str) -> None:
    raw = prefix + generate(Mode.LIVE)[PREFIX:]
    err = assert_rejected(raw, MalformedApiKey)
    assert "must start with sk_live_ or sk_test_" in str(err)
    assert_no_secret(str(err), raw)


@given(keys(), st.sampled_from(["ghp_", "xoxb-", "AKIA", "eyJhbGciOi", "Bearer "]))
def test_another_vendors_token_shows_at_most_three_characters(key: str, vendor: str) -> None:
    """A password or another vendor's token pasted by mistake is not echoed."""
    raw = vendor + key[PREFIX:]
    err = assert_rejected(raw, MalformedApiKey)
    assert repr(vendor[:3]) in str(err)
    assert vendor[:4] not in str(err)
    assert_no_secret(str(err), key)


# --- arbitrary input -----------------------------------------------------------------------------
@given(st.text() | st.text(alphabet=ALPHABET + "_ \n\r\t\\", max_size=60))
@example("")
@example("sk_live_")
@example("sk_live_" + "0" * 43)
@example("sk_test_" + "\x00" * 43)
def test_arbitrary_text_only_ever_raises_the_two_key_errors(raw: str) -> None:
    outcome = parse_outcome(raw)
    if isinstance(outcome, ParsedKey):
        assert KEY_RE.fullmatch(raw)
        assert raw[-6:] == b62(zlib.crc32(raw[:-6].encode()), 6)
        assert outcome.value == raw
    else:
        assert outcome.message
        assert outcome.message == str(outcome)
        assert outcome.code in {"malformed_api_key", "invalid_api_key"}


@given(keys(), st.text(max_size=5), st.text(max_size=5))
def test_no_message_echoes_the_secret(key: str, before: str, after: str) -> None:
    raw = before + key + after
    outcome = parse_outcome(raw)
    if isinstance(outcome, ParsedKey):
        assert raw == key
    else:
        assert_no_secret(outcome.message, key)


# --- base62 --------------------------------------------------------------------------------------
@given(st.integers(1, 12).flatmap(lambda w: st.tuples(st.integers(0, 62**w - 1), st.just(w))))
def test_base62_round_trips_at_fixed_width(pair: tuple[int, int]) -> None:
    number, width = pair
    encoded = base62_encode(number, width)
    assert len(encoded) == width
    assert set(encoded) <= set(BASE62)
    assert b62_decode(encoded) == number
    assert encoded == b62(number, width)


@given(st.integers(0, 62**6 - 1), st.integers(0, 62**6 - 1))
def test_base62_preserves_order(a: int, b: int) -> None:
    assert (a < b) == (base62_encode(a, 6) < base62_encode(b, 6))


@given(
    st.integers(1, 10).flatmap(lambda w: st.tuples(st.integers(62**w, 62 ** (w + 2)), st.just(w)))
)
def test_base62_refuses_a_number_wider_than_width(pair: tuple[int, int]) -> None:
    number, width = pair
    with pytest.raises(ValueError, match="does not fit"):
        base62_encode(number, width)


def test_six_base62_characters_hold_every_crc32() -> None:
    assert base62_encode(2**32 - 1, 6) == b62(2**32 - 1, 6)
    assert BASE62 == ALPHABET


# --- purity --------------------------------------------------------------------------------------
def test_keyformat_imports_only_the_standard_library_and_the_domain() -> None:
    tree = ast.parse(inspect.getsource(keyformat))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    third_party = {
        m
        for m in imported
        if m.split(".")[0]
        not in {"__future__", "re", "secrets", "zlib", "dataclasses", "enum", "keyplane"}
    }
    assert third_party == set()
    assert {m for m in imported if m.startswith("keyplane")} <= {"keyplane.domain.errors"}


def test_parse_is_cheap_enough_for_every_request() -> None:
    """No I/O on this path: 30,000 parses (valid, typo, truncated) well under a second each
    batch on a slow machine; a single database round trip each would take far longer."""
    valid = generate(Mode.LIVE)
    typo = valid[:-1] + ("A" if valid[-1] != "A" else "B")
    inputs = [(valid, None), (typo, InvalidApiKey), (valid[:50], MalformedApiKey)] * 10_000
    started = time.perf_counter()
    for raw, error in inputs:
        if error is None:
            parse(raw)
        else:
            with pytest.raises(error):
                parse(raw)
    assert time.perf_counter() - started < 3.0
