"""HTTP helpers for adapters that serve routes: one bounded body reader, and the mark that files a
request as refused at the door (the gateway's door middleware, gateway.entrypoints.limits, logs
and counts it when the answer goes out)."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.types import Scope

from gateway.errors import MalformedMessage, TooLarge

_MARK = "cgt.refused"  # scope key: the reason and detail a route gave for its refusal


async def bounded_body(request: Request, limit: int) -> bytes:
    """The request body, refused with TooLarge (413) as soon as it passes `limit` bytes; a chunked
    body is counted as it streams, never gathered whole first."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body exceeds {limit} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            if len(body) + len(chunk) > limit:
                raise TooLarge(f"the body exceeds {limit} bytes")
            body += chunk
    except ClientDisconnect:  # a sender gone mid-body is the sender's doing, not a defect of ours
        raise MalformedMessage("the body ended early: the sender disconnected") from None
    return bytes(body)


def refuse(request: Request, reason: str, detail: str | None = None) -> None:
    """Mark this request as refused at the door, with a reason slug (a metric label: keep the set
    small) and an internal detail for the log; the door middleware records it when the answer
    goes out."""
    request.scope[_MARK] = (reason, detail)


def refusal(scope: Scope) -> tuple[str, str | None] | None:
    """The reason and detail a route marked its request's refusal with, if it did."""
    marked: tuple[str, str | None] | None = scope.get(_MARK)
    return marked
