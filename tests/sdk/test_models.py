"""Decoding without a server: DESIGN §4's error codes to exception classes, and the DESIGN §6
shape of a generated answer (its endpoint is tested live where the server has it)."""

from __future__ import annotations

import httpx
import pytest

from keyplane.sdk import errors, models

DESIGN_CODES = {
    "missing_authorization": (401, errors.MissingAuthorization),
    "malformed_authorization": (401, errors.MalformedAuthorization),
    "malformed_api_key": (401, errors.MalformedApiKey),
    "invalid_api_key": (401, errors.InvalidApiKey),
    "api_key_revoked": (401, errors.ApiKeyRevoked),
    "api_key_expired": (401, errors.ApiKeyExpired),
    "wrong_environment": (401, errors.WrongEnvironment),
    "project_mismatch": (403, errors.ProjectMismatch),
    "insufficient_permissions": (403, errors.InsufficientPermissions),
    "ip_not_allowed": (403, errors.IpNotAllowed),
    "not_found": (404, errors.NotFound),
    "validation_error": (422, errors.ValidationError),
    "rate_limit_exceeded": (429, errors.RateLimitExceeded),
}


@pytest.mark.parametrize("code", sorted(DESIGN_CODES))
def test_every_design_error_code_has_its_class(code: str) -> None:
    status, cls = DESIGN_CODES[code]
    response = httpx.Response(status, json={"error": code, "message": "m", "retry_after": 3})
    error = errors.from_response(response)
    assert type(error) is cls
    assert (error.code, error.status, error.message) == (code, status, "m")


def test_unknown_codes_fall_back_to_the_status() -> None:
    teapot = errors.from_response(httpx.Response(403, json={"error": "new_rule", "message": "x"}))
    assert isinstance(teapot, errors.PermissionDenied)
    assert errors.from_response(httpx.Response(502, text="<html>")).status == 502
    assert isinstance(errors.from_response(httpx.Response(503, text="")), errors.ServerError)
    limited = errors.from_response(
        httpx.Response(
            429, json={"error": "rate_limit_exceeded", "message": "m", "retry_after": 23}
        )
    )
    assert isinstance(limited, errors.RateLimitExceeded)
    assert limited.retry_after == 23


def test_generated_answer_shape() -> None:
    body = {
        "message": {"id": 9, "role": "assistant", "content": "Use the reset link."},
        "sources": [{"snippet_id": 4, "title": "Passwords", "url": None, "score": 0.82}],
    }
    answer = models.GeneratedResponse.from_json(body)
    assert answer.message.content == "Use the reset link."
    assert answer.sources[0].snippet_id == 4
    assert answer.sources[0].score == pytest.approx(0.82)
    assert answer["sources"] == body["sources"]
    # Fields the SDK does not name yet stay reachable.
    user = models.EndUser.from_json({"external_id": "a", "segment": "vip"})
    assert user.raw["segment"] == "vip"
