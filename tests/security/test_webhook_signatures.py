"""keyplane.webhooks: what a receiver uses to check a delivery."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from keyplane.webhooks import sign, verify_signature

SECRET = "whsec_test-secret"
BODY = b'{"event":"alert.raised","data":{}}'


def test_a_fresh_signature_verifies() -> None:
    assert verify_signature(SECRET, sign(SECRET, BODY), BODY)


def test_forged_tampered_old_and_missing_signatures_are_rejected() -> None:
    now = int(time.time())
    assert not verify_signature(SECRET, sign("whsec_another", BODY), BODY)
    assert not verify_signature(SECRET, sign(SECRET, BODY), BODY + b" ")
    assert not verify_signature(SECRET, sign(SECRET, BODY, now - 301), BODY, tolerance=300)
    assert not verify_signature(SECRET, sign(SECRET, BODY, now + 301), BODY, tolerance=300)
    assert verify_signature(SECRET, sign(SECRET, BODY, now - 299), BODY, tolerance=300)
    good = sign(SECRET, BODY, now)
    # The timestamp is signed: moving it (to replay later) breaks the signature.
    replayed = good.replace(f"t={now}", f"t={now + 100}")
    assert not verify_signature(SECRET, replayed, BODY, now=now + 100)
    for header in (None, "", "v1=abc", f"t={now}", "t=abc,v1=00", "garbage"):
        assert not verify_signature(SECRET, header, BODY)


def test_any_of_several_v1_signatures_may_match() -> None:
    good = sign(SECRET, BODY)
    timestamp, digest = good.split(",")
    assert verify_signature(SECRET, f"{timestamp},v1=deadbeef,{digest}", BODY)


@given(body=st.binary(max_size=500), secret=st.text(min_size=1, max_size=40))
def test_signing_round_trips_and_binds_the_body(body: bytes, secret: str) -> None:
    header = sign(secret, body)
    assert verify_signature(secret, header, body)
    assert not verify_signature(secret, header, body + b"x")
