"""What a request may cost at the HTTP door, before anyone knows who sent it.

Bodies are read through `bounded_body` (gateway/http_body.py, exported by gateway.sdk) and nothing
else: the declared length is checked first, the streamed bytes are counted as they arrive, and the
read stops with TooLarge (413) past the limit.
`Door` wraps the app. A response that leaves a request's body unread closes the connection, so the
server stops reading instead of draining whatever the sender keeps sending; and a request refused
at the door (401, 413, or marked by its route with `refuse`) is logged and counted with its
metadata: source address, route, reason, size. Its bytes are never stored: keeping whatever an
unauthenticated sender chose to send would give anyone a channel to fill the disk. With
`access_log`, every request is logged by its route's template, status and time (never the raw
path or query: they may name a patient's identifiers).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import metrics
from gateway.http_body import refusal

log = logging.getLogger("gateway.http.door")
access = logging.getLogger("gateway.http.access")

REFUSED_STATUS = {401: "not_authenticated", 413: "too_large"}
_DETAIL_CHARS = 200  # a detail may quote a header the sender chose: keep the log line short


@dataclass
class _Reading:
    declares_body: bool
    received: int = 0
    complete: bool = False


class Door:
    """ASGI middleware: close connections whose body was left unread; record door refusals."""

    def __init__(self, app: ASGIApp, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
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
                if self.access_log:
                    _access(scope, message["status"], began)
                if reading.declares_body and not reading.complete:
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
                _record(scope, message["status"], reading, length.decode("latin-1") or None)
            await send(message)

        await self.app(scope, counted, answer)


def _template(scope: Scope) -> str:
    """The matched route's path template: never the raw path, which is the sender's."""
    return getattr(scope.get("route"), "path", None) or "unmatched"


def _access(scope: Scope, status: int, began: float) -> None:
    elapsed_ms = (time.perf_counter() - began) * 1000
    access.info("%s %s %d %.1f ms", scope["method"], _template(scope), status, elapsed_ms)


def _record(scope: Scope, status: int, reading: _Reading, declared: str | None) -> None:
    marked = refusal(scope)
    if marked is None and status not in REFUSED_STATUS:
        return
    reason, detail = marked if marked is not None else (REFUSED_STATUS[status], None)
    template = _template(scope)
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
