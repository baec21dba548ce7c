"""The leak-report endpoint for GitHub secret scanning's partner program (issue 7). It is
authenticated by GitHub's signature over the raw body, not by an API key."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from keyplane.api.deps import RuntimeDep, client_ip
from keyplane.api.schemas import errors_doc
from keyplane.api.security_schemas import LeakFeedback, LeakReportIn
from keyplane.domain.errors import ValidationFailed
from keyplane.services import leaks
from keyplane.services.github_keys import IDENTIFIER_HEADER, SIGNATURE_HEADER
from keyplane.services.keys import Actor

router = APIRouter(tags=["leak response"])
_REPORTS = TypeAdapter(list[LeakReportIn])
MAX_REPORTS = 1000


def _parse(body: bytes) -> list[leaks.LeakReport]:
    try:
        items = _REPORTS.validate_python(json.loads(body))
    except (ValueError, PydanticValidationError):
        raise ValidationFailed(
            'Expected a JSON array of {"token", "type", "url", "source"} objects.',
            details=[{"loc": ["body"], "msg": "not a secret-scanning payload"}],
        ) from None
    if len(items) > MAX_REPORTS:
        raise ValidationFailed(f"At most {MAX_REPORTS} tokens per report.")
    return [leaks.LeakReport(i.token, i.type, i.url, i.source) for i in items]


# The body is read raw (the signature covers its exact bytes), so its schema is declared here.
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": LeakReportIn.model_json_schema()}
            }
        },
    }
}


@router.post(
    "/v1/secret-scanning/github",
    response_model=list[LeakFeedback],
    responses=errors_doc(400, 401, 422),
    openapi_extra=_BODY_DOC,
)
async def github_secret_scanning(request: Request, rt: RuntimeDep) -> list[dict[str, Any]]:
    """Receives GitHub's leak reports (`[{"token","type","url","source"}]`, signed with
    ECDSA P-256 by a key from KEYPLANE_GITHUB_SCANNING_KEYS_FILE). Each reported keyplane
    key is revoked, or flagged when its organization's leak_policy is `flag`, and raises an
    alert. The answer is GitHub's feedback format, naming tokens by SHA-256 only."""
    body = await request.body()
    rt.github_keys.verify(
        request.headers.get(IDENTIFIER_HEADER), request.headers.get(SIGNATURE_HEADER), body
    )
    reports = _parse(body)
    actor = Actor(
        user_id=None,
        ip=client_ip(request, rt.settings.trusted_proxies),
        user_agent=request.headers.get("user-agent") or "GitHub secret scanning",
    )
    async with rt.transaction() as db:
        return await leaks.handle(db, rt.keyring, rt.keys, reports, actor)
