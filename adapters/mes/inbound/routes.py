"""`POST /mes/{manufacturer}/events`: an MES that prefers REST sends the same events as on its
queue, with its API key (`X-API-Key`). The key must be the manufacturer's named in the path; the
Content-Type names the dialect (415 when it names none we take).

    202  applied or quarantined (held for review): the outcome as JSON
    200  ignored (not ours), or a repeat of a message already taken (`Idempotent-Replayed: true`,
         the first answer byte for byte)
    4xx  refused: an RFC 9457 problem carrying the outcome (the raw message is kept)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Request, Response

from adapters.mes.inbound.dialects import dialect_of
from gateway.sdk import (
    Adapter,
    NotAuthenticated,
    PartnerKind,
    Runtime,
    Settings,
    UnsupportedMessage,
    bounded_body,
    refuse,
)

PROBLEM = "application/problem+json"
PATH = "/mes/{manufacturer}/events"


def _unsupported(exc: UnsupportedMessage) -> Response:
    body = {"type": "about:blank", "title": type(exc).__name__, "status": 415, "detail": exc.public_message}
    return Response(orjson.dumps(body), status_code=415, media_type=PROBLEM)


def events_router(enabled: Callable[[Settings], Mapping[str, Adapter]]) -> APIRouter:
    router = APIRouter()

    @router.post(PATH, status_code=202)
    async def mes_events(
        request: Request, manufacturer: str, x_api_key: Annotated[str | None, Header()] = None
    ) -> Response:
        runtime: Runtime = request.app.state.gateway
        sender = runtime.partners.by_api_key(x_api_key)  # NotAuthenticated: 401, refusal counted
        if sender.id != manufacturer or sender.kind is not PartnerKind.manufacturer:
            raise NotAuthenticated(detail=f"{sender.id}'s key on {manufacturer}'s events")
        raw = await bounded_body(request, runtime.settings.max_body_bytes)
        content_type = request.headers.get("content-type")
        try:
            dialect = dialect_of(content_type, raw, enabled(runtime.settings))
        except UnsupportedMessage as exc:
            refuse(request, "unsupported_media_type", exc.public_message)
            return _unsupported(exc)
        if not sender.speaks(dialect.name):
            unspoken = UnsupportedMessage(f"{manufacturer} is not set up to send {dialect.name}")
            refuse(request, "unsupported_media_type", unspoken.public_message)
            return _unsupported(unspoken)
        outcome, rendered = await runtime.door.accept(
            dialect, sender, raw, transport="http", content_type=content_type
        )
        if outcome.duplicate:
            headers = {"Idempotent-Replayed": "true"}
            media = dialect.content_type if outcome.status in ("applied", "ignored") else PROBLEM
            return Response(rendered or b"", status_code=200, media_type=media, headers=headers)
        if outcome.status == "ignored":
            return Response(rendered or b"", status_code=200, media_type=dialect.content_type)
        if outcome.status in ("applied", "quarantined"):
            media = dialect.content_type if outcome.status == "applied" else PROBLEM
            return Response(rendered or b"", status_code=202, media_type=media)
        return Response(rendered or b"", status_code=outcome.http_status, media_type=PROBLEM)

    return router
