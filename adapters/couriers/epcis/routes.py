"""The EPCIS REST binding's capture interface, per courier:

    POST /couriers/{courier}/epcis/capture            -> 202, Location: .../capture/{captureID}
    GET  /couriers/{courier}/epcis/capture/{captureID} -> the capture job, to the courier that sent it

Both signed with Standard Webhooks (the GET signs its empty body). The capture id is the id of the
message as the gateway kept it: the document is stored (and processed) before the 202, and the
job is read back through the Messages port, so captures need no table of their own.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from adapters.couriers.epcis import capture as binding
from adapters.couriers.epcis.capture import CaptureRequest
from gateway.sdk import (
    Adapter,
    InboundContext,
    KeptMessage,
    NotAuthenticated,
    Outcome,
    Partner,
    Runtime,
    StandardWebhooks,
    WebhookRoute,
    authenticate,
    bounded_body,
    webhook_router,
)

CAPTURE = "/couriers/{partner}/epcis/capture"
PROBLEM = "application/problem+json"
HEADERS = {"GS1-EPCIS-Version": binding.VERSION}


def request_view(request: Request) -> CaptureRequest:
    headers = request.headers
    return CaptureRequest(
        version=headers.get("gs1-epcis-version"),
        behaviour=headers.get("gs1-capture-error-behaviour"),
        webhook_id=headers.get("webhook-id"),
    )


def job_url(request_path: str, capture_id: str) -> str:
    return f"{request_path.rstrip('/')}/{capture_id}"


def respond(partner_path: str, outcome: Outcome, rendered: bytes | None) -> Response:
    """202 and the job's Location; a refused document: the binding's problem (400, 406, ...),
    still naming the job, which is kept."""
    headers = dict(HEADERS)
    if outcome.inbound_id:
        headers["Location"] = job_url(partner_path, outcome.inbound_id)
    if outcome.duplicate:
        headers["Idempotent-Replayed"] = "true"
    if outcome.status == "rejected":
        status = int(orjson.loads(rendered or b"{}").get("status", 400))
        return Response(rendered or b"", status_code=status, media_type=PROBLEM, headers=headers)
    return Response(rendered or b"", status_code=202, media_type="application/json", headers=headers)


def refusal(exc: NotAuthenticated) -> Response:
    body = {"type": binding.SECURITY, "title": exc.public_message, "status": 401}
    return Response(orjson.dumps(body), status_code=401, media_type=PROBLEM, headers=HEADERS)


def routes(adapter: Adapter) -> APIRouter:
    signed = StandardWebhooks()

    def responder(outcome: Outcome, rendered: bytes | None) -> Response:
        return respond(CAPTURE.replace("{partner}", outcome.partner), outcome, rendered)

    post = WebhookRoute(CAPTURE, signed, request_view=request_view, respond=responder, refusal=refusal)
    router = webhook_router(adapter, post)
    get = WebhookRoute(CAPTURE + "/{capture_id}", signed)

    async def capture_job(request: Request, partner: str, capture_id: str) -> Response:
        runtime: Runtime = request.app.state.gateway
        raw = await bounded_body(request, runtime.settings.max_body_bytes)
        try:
            sender = await authenticate(request, adapter, get, raw, keep_refused=False)
        except NotAuthenticated as exc:
            return refusal(exc)
        kept = await runtime.messages.kept(sender.id, capture_id[:36])
        if kept is None or kept.adapter != adapter.name:
            body = {"type": binding.NO_SUCH_RESOURCE, "title": "no such capture job", "status": 404}
            return Response(orjson.dumps(body), status_code=404, media_type=PROBLEM, headers=HEADERS)
        return Response(job_of(adapter, kept, sender), media_type="application/json", headers=HEADERS)

    router.add_api_route(CAPTURE + "/{capture_id}", capture_job, methods=["GET"])
    return router


def job_of(adapter: Adapter, kept: KeptMessage, partner: Partner) -> bytes:
    """The job as answered when the answer is kept (applied or quarantined; a held document's as
    its review decided since); a refused document's again from its kept bytes (decoding is pure):
    its events' errors, or the error it was refused with (the version header, say, is not kept)."""
    if kept.answer is not None:
        return binding.as_decided(kept.answer, kept.status)
    errors: list[dict[str, Any]] = []
    if kept.status != "applied":
        content = adapter.decode(kept.raw, InboundContext(partner, "http", kept.received_at)).content
        if isinstance(content, binding.Capture):
            errors = binding.event_problems(content.errors)
        if not errors:
            errors = [binding.problem_of_error(kept.error, None)]
    job = binding.job(
        kept.inbound_id,
        kept.received_at,
        None,  # not kept: the header's value is in the answer given, when that is kept
        success=not errors,
        errors=errors,
        finished_at=kept.received_at,
    )
    return orjson.dumps(job)
