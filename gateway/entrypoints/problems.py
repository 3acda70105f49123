"""RFC 9457 problem+json: how the HTTP shell says what went wrong."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from gateway.errors import GatewayError, NotAuthenticated, RejectedMessage, TooLarge
from gateway.http_body import refuse

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM)


async def gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if isinstance(exc, NotAuthenticated | TooLarge):
        refuse(request, "not_authenticated" if isinstance(exc, NotAuthenticated) else "too_large", exc.detail)
    location = exc.location if isinstance(exc, RejectedMessage) else None
    headers = {"Retry-After": "5"} if exc.http_status == 503 else None
    response = problem(exc.http_status, type(exc).__name__, exc.public_message, location=location)
    if headers:
        response.headers.update(headers)
    return response


async def validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = "/".join(str(p) for p in first.get("loc", ()))
    return problem(422, "RequestValidationError", str(first.get("msg", "invalid request")), location=where)


async def http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail))
