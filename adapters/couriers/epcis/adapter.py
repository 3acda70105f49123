"""The epcis dialect: a courier's GS1 EPCIS 2.0 documents (JSON-LD), captured through the EPCIS
REST binding at `POST /couriers/{courier}/epcis/capture`, signed with Standard Webhooks.

decode: JSON -> wire.Document -> each event checked and mapped (mapping.py); the capture's error
behaviour decides whether a bad event refuses the document (rollback) or only itself (proceed).
answer: the binding's capture job, or its problem. Everything of the core comes from gateway.sdk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import orjson
from fastapi import APIRouter
from pydantic import ValidationError

from adapters.couriers.epcis.capture import (
    Capture,
    CaptureRequest,
    DocumentRefused,
    behaviour_of,
    check_version,
)
from adapters.couriers.epcis.capture import answer as capture_answer
from adapters.couriers.epcis.mapping import map_document
from adapters.couriers.epcis.routes import routes
from adapters.couriers.epcis.vocabulary import Vocabulary, load_vocabulary
from adapters.couriers.epcis.wire import Document
from gateway.sdk import (
    Decoded,
    Example,
    GatewayError,
    InboundContext,
    MalformedMessage,
    NotOurs,
    Outcome,
    PartnerKind,
    examples_in,
    fingerprint,
)

EXAMPLES = Path(__file__).parent / "examples"


def read_document(raw: bytes) -> Document:
    try:
        document = Document.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage("the body is not JSON", detail=str(exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "/" + "/".join(str(p) for p in first["loc"])
        raise MalformedMessage(
            f"not an EPCIS 2.0 document (at {where}: {first['msg']})", location=where
        ) from None
    if document.type == "EPCISDocument":
        for field, given in (
            ("schemaVersion", document.schema_version),
            ("creationDate", document.creation_date),
        ):
            if given is None:
                raise MalformedMessage(
                    f"not an EPCIS 2.0 document (at /{field}: Field required)", location=f"/{field}"
                )
    if document.schema_version is not None and not document.schema_version.startswith("2."):
        raise MalformedMessage("schemaVersion must be 2.0", location="/schemaVersion")
    return document


def capture_id(request: CaptureRequest, document: Document, raw: bytes) -> str:
    """The idempotency key: the signed webhook's id, else the document's own id, else its digest
    (the same bytes again are the same capture)."""
    return request.webhook_id or document.id or "sha256:" + hashlib.sha256(raw).hexdigest()


class Epcis:
    name = "epcis"
    dialect = "GS1 EPCIS 2.0 JSON-LD capture (REST binding, Standard Webhooks)"
    content_type = "application/json"
    partner_kinds = (PartnerKind.courier,)

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        request = ctx.request if isinstance(ctx.request, CaptureRequest) else CaptureRequest()
        message_id = request.webhook_id
        capture = Capture(ctx.received_at, "rollback")
        try:
            check_version(request)
            capture = Capture(ctx.received_at, behaviour_of(request))
            document = read_document(raw)
        except GatewayError as exc:  # refused, and kept: the job says why
            return Decoded(message_id, error=exc, content=capture)
        message_id = capture_id(request, document, raw)
        mapped = map_document(document, self.vocabulary, ctx.partner.id)
        capture = Capture(ctx.received_at, capture.behaviour, mapped.errors, mapped.events)
        if mapped.errors and (capture.behaviour == "rollback" or not mapped.commands):
            return Decoded(message_id, error=DocumentRefused(mapped.errors, mapped.events), content=capture)
        if not mapped.commands:
            return Decoded(message_id, error=NotOurs("no_shipment_events"), content=capture)
        return Decoded(message_id, mapped.commands, fingerprint=fingerprint(mapped.commands), content=capture)

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        capture = decoded.content if decoded and isinstance(decoded.content, Capture) else None
        return capture_answer(outcome, capture)

    def examples(self) -> Sequence[Example]:
        return examples_in(EXAMPLES, "*.jsonld")

    def http_routes(self) -> APIRouter:
        return routes(self)


adapter = Epcis(load_vocabulary())
