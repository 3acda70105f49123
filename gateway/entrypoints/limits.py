"""What a request may cost at the HTTP door, before anyone knows who sent it.

Bodies are read through `bounded_body` and nothing else: the declared length is checked first, the
streamed bytes are counted as they arrive, and the read stops with TooLarge (413) past the limit.
`Door` wraps the app. A response that leaves a request's body unread closes the connection, so the
server stops reading instead of draining whatever the sender keeps sending; and a request refused
at the door (401, 413, or marked by its route with `refuse`) is logged and counted with its
metadata: source address, route, reason, size. Its bytes are never stored: keeping whatever an
unauthenticated sender chose to send would give anyone a channel to fill the disk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import metrics
from gateway.errors import MalformedMessage, TooLarge

log = logging.getLogger("gateway.http.door")

REFUSED_STATUS = {401: "not_authenticated", 413: "too_large"}
_MARK = "cgt.refused"  # scope key: the reason and detail a route gave for its refusal
_DETAIL_CHARS = 200  # a detail may quote a header the sender chose: keep the log line short


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
    small) and an internal detail for the log; `Door` records it when the answer goes out."""
    request.scope[_MARK] = (reason, detail)


@dataclass
class _Reading:
    declares_body: bool
    received: int = 0
    complete: bool = False


class Door:
    """ASGI middleware: close connections whose body was left unread; record door refusals."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        reading = _Reading(declares_body=b"transfer-encoding" in headers or length not in (b"", b"0"))

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                reading.received += len(message.get("body", b""))
                reading.complete = not message.get("more_body", False)
            return message

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                if reading.declares_body and not reading.complete:
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
                _record(scope, message["status"], reading, length.decode("latin-1") or None)
            await send(message)

        await self.app(scope, counted, answer)


def _record(scope: Scope, status: int, reading: _Reading, declared: str | None) -> None:
    marked: tuple[str, str | None] | None = scope.get(_MARK)
    if marked is None and status not in REFUSED_STATUS:
        return
    reason, detail = marked if marked is not None else (REFUSED_STATUS[status], None)
    route = scope.get("route")
    template = getattr(route, "path", None) or "unmatched"  # never the raw path: it is the sender's
    metrics.HTTP_REFUSED.labels(template, reason).inc()
    client = scope.get("client")
    log.warning(
        "refused at the door: %s %s from %s, %s (%s), status %d, %d bytes read, %s declared",
        scope["method"],
        template,
        client[0] if client else "-",
        reason,
        (detail or "-")[:_DETAIL_CHARS],
        status,
        reading.received,
        declared or "none",
    )
