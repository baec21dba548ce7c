"""The one place where errors become HTTP responses (DESIGN §4).

Every error body is `{"error": code, "message": sentence, ...extra}`. Anything a client can
send ends here as a 4xx; an unexpected exception becomes a 500 without details (logged with a
request id, never with a secret).
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from keyplane.adapters.sql.database import is_unavailable
from keyplane.domain import errors as e
from keyplane.services.ratelimit import LimiterUnavailable

log = structlog.get_logger(__name__)

STATUS: dict[type[e.KeyplaneError], int] = {
    e.MissingAuthorization: 401,
    e.MalformedAuthorization: 401,
    e.MalformedApiKey: 401,
    e.InvalidApiKey: 401,
    e.ApiKeyRevoked: 401,
    e.ApiKeyExpired: 401,
    e.WrongEnvironment: 401,
    e.InvalidCredentials: 401,
    e.SsoFailed: 400,
    e.PasswordLoginDisabled: 403,
    e.InvalidSignature: 401,
    e.MissingSignature: 400,
    e.ProjectMismatch: 403,
    e.InsufficientPermissions: 403,
    e.IpNotAllowed: 403,
    e.ReauthenticationRequired: 403,
    e.SessionRequired: 403,
    e.CsrfFailed: 403,
    e.SecretKeyInBrowser: 403,
    e.OrgPermissionNotAllowed: 400,
    e.NotFound: 404,
    e.Conflict: 409,
    e.KeyLimitReached: 409,
    e.PayloadTooLarge: 413,
    e.UnsupportedMediaType: 415,
    e.ValidationFailed: 422,
    e.PermissionDependency: 422,
    e.RateLimitExceeded: 429,
    e.LoginLocked: 429,
    LimiterUnavailable: 503,
}

# Errors about the credential itself; RFC 6750 asks for error="invalid_token" on these.
_TOKEN_ERRORS = (
    e.MalformedAuthorization,
    e.MalformedApiKey,
    e.InvalidApiKey,
    e.ApiKeyRevoked,
    e.ApiKeyExpired,
    e.WrongEnvironment,
)


def status_of(error: e.KeyplaneError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_response(error: e.KeyplaneError) -> JSONResponse:
    status = status_of(error)
    headers: dict[str, str] = {}
    if status == 401 and not isinstance(error, (e.InvalidCredentials, e.InvalidSignature)):
        headers["WWW-Authenticate"] = (
            'Bearer realm="keyplane", error="invalid_token"'
            if isinstance(error, _TOKEN_ERRORS)
            else 'Bearer realm="keyplane"'
        )
    if isinstance(error, e.RateLimitExceeded | e.LoginLocked):
        headers["Retry-After"] = str(error.retry_after)
    body: dict[str, Any] = {"error": error.code, "message": error.message, **error.extra}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo `input`: a request body may carry a secret.
    details = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        detail = {"loc": loc, "msg": str(err.get("msg", "")), "type": err.get("type")}
        # A batch item's error names its index and field (issue 11).
        if loc[:2] == ["body", "items"] and len(loc) > 2 and isinstance(loc[2], int):
            detail |= {"index": loc[2], "field": ".".join(str(p) for p in loc[3:]) or None}
        details.append(detail)
    return details


def _describe(details: list[dict[str, Any]]) -> str:
    if not details:
        return "The request is invalid."
    first = details[0]
    if "index" in first:
        field = f", field {first['field']}" if first["field"] else ""
        more = f" (and {len(details) - 1} more problems)" if len(details) > 1 else ""
        return (
            f"Batch refused, nothing was written: item {first['index']}{field}: "
            f"{first['msg']}{more}."
        )
    where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
    more = f" (and {len(details) - 1} more problems)" if len(details) > 1 else ""
    return f"Invalid request: {where}: {first['msg']}{more}."


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(e.KeyplaneError)
    async def _domain(request: Request, exc: e.KeyplaneError) -> JSONResponse:
        request.state.error_code = exc.code
        return error_response(exc)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not is_unavailable(exc):
            raise exc  # a bug, not an outage: the 500 path logs it
        log.warning("database_unavailable", error_type=type(exc).__name__)
        request.state.error_code = "database_unavailable"
        return JSONResponse(
            {
                "error": "database_unavailable",
                "message": "The database is unavailable right now; retry in a few seconds.",
            },
            status_code=503,
            headers={"Retry-After": "1"},
        )

    for unavailable in (SQLAlchemyError, ConnectionError, TimeoutError):
        app.add_exception_handler(unavailable, _database)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        request.state.error_code = e.ValidationFailed.code
        return error_response(e.ValidationFailed(_describe(details), details=details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, e.KeyplaneError):
            # Reading the body failed on our side, e.g. a chunked body over the size limit
            # while FastAPI parsed a form: answer with that error, not a generic one.
            request.state.error_code = exc.__cause__.code
            return error_response(exc.__cause__)
        if exc.status_code == 400:  # FastAPI could not decode the body
            request.state.error_code = e.ValidationFailed.code
            return error_response(
                e.ValidationFailed(
                    "The request body could not be read; send UTF-8 JSON with "
                    "'Content-Type: application/json'.",
                    details=[{"loc": ["body"], "msg": "unreadable body"}],
                )
            )
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        request.state.error_code = code
        message = {
            404: f"No endpoint at {request.url.path}; see /docs for the API.",
            405: f"{request.method} is not allowed on {request.url.path}.",
        }.get(exc.status_code, str(exc.detail))
        return JSONResponse(
            {"error": code, "message": message},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request.state.error_code = "internal_error"
        log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
        return JSONResponse(
            {"error": "internal_error", "message": "Something went wrong on our side; retry."},
            status_code=500,
        )
