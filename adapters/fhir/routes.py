"""The /fhir/r4 routes: intake of Bundles and resources, Task reads, metadata, the token endpoint.

Every answer is FHIR JSON: errors, including authentication and limits, are OperationOutcomes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from adapters.fhir import answers, capability, queries
from adapters.fhir.message import ANY_REQUEST, Interaction, places_order
from adapters.fhir.oauth import OAuthError, TokenService, permits, token_service_of
from adapters.fhir.profile import SiteProfile, profile_for
from adapters.fhir.request import Received
from adapters.fhir.task import render_task
from gateway.sdk import (
    Adapter,
    GatewayError,
    MalformedMessage,
    NotAuthenticated,
    NotPermitted,
    Partner,
    Runtime,
    TooLarge,
    TransientError,
    UnsupportedMessage,
    bounded_body,
    credential,
    refuse,
)

BASE = capability.BASE
WRITABLE = ("ServiceRequest", "MedicationRequest", "Patient", "Appointment", "Procedure")
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
TOKEN_REQUEST_LIMIT = 16_384  # bytes: an assertion and a few scopes; read before anyone is known
# Token endpoint errors that come before the client is authenticated: recorded as door refusals.
REFUSED_AT_THE_DOOR = frozenset({"invalid_request", "unsupported_grant_type", "invalid_client"})


class UnsupportedMediaType(UnsupportedMessage):
    public_message = "the content type is not taken; send application/fhir+json"
    http_status = 415


def fhir(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=answers.FHIR_JSON, headers=headers)


def failed(exc: GatewayError) -> Response:
    headers = {"Retry-After": "5"} if isinstance(exc, TransientError) else None
    if isinstance(exc, NotAuthenticated):
        headers = {"WWW-Authenticate": 'Bearer realm="fhir"'}
    return fhir(answers.of_error(exc), exc.http_status, headers)


def runtime(request: Request) -> Runtime:
    gateway: Runtime = request.app.state.gateway
    return gateway


def tokens(request: Request) -> TokenService:
    return token_service_of(runtime(request).secrets)


@dataclass(frozen=True)
class Caller:
    partner: Partner
    profile: SiteProfile
    scopes: frozenset[str] | None  # None: an API key, which may do all a site may

    def require(self, resource_types: Iterable[str], access: Literal["read", "write"]) -> None:
        for kind in resource_types:
            if not permits(self.scopes, kind, access):
                raise NotPermitted(f"the token's scopes do not allow {access} of {kind}")


async def authenticate(request: Request, resource_type: str, access: Literal["read", "write"]) -> Caller:
    """An API key, or a bearer token from our token endpoint; then the scope and the profile."""
    gw = runtime(request)
    authorization = request.headers.get("authorization", "")
    scopes = None
    if authorization.lower().startswith("bearer "):
        token = credential(authorization[7:].strip(), "bearer token")
        if token is None:
            raise NotAuthenticated("the bearer token is empty")
        grant = await tokens(request).verify(token.decode("ascii"))
        partner, scopes = gw.partners.get(grant.partner), grant.scopes
    else:
        partner = gw.partners.by_api_key(request.headers.get("x-api-key"))
    profile = profile_for(partner)
    if profile is None:
        raise NotPermitted("this partner is not configured for FHIR", detail=partner.id)
    caller = Caller(partner, profile, scopes)
    if resource_type != "Bundle":  # a Bundle's entries are checked once it is read
        caller.require([resource_type], access)
    return caller


async def body_of(request: Request, limit: int) -> bytes:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media not in JSON_TYPES:
        raise UnsupportedMediaType(f"content type {media} is not taken; send application/fhir+json")
    return await bounded_body(request, limit)


async def receive(request: Request, adapter: Adapter, interaction: Interaction, scope: str) -> Response:
    """Authenticate, look up what the mapping must know, hand the body in at the door, answer."""
    try:
        gw = runtime(request)
        caller = await authenticate(request, scope, "write")
        partner, profile = caller.partner, caller.profile
        raw = await body_of(request, gw.settings.max_body_bytes)
        read = Received.of(raw, interaction)
        caller.require(read.acted_on(), "write")
        orders, patients = read.orders_to_look_up(profile), read.patients_to_look_up(profile)
        read = read.knowing(
            orders=await gw.crosswalk.statuses(orders) if orders else None,
            patients=await gw.crosswalk.bound(patients) if patients else None,
        )
        outcome, rendered = await gw.door.accept(
            adapter,
            partner,
            raw,
            transport="http",
            content_type=request.headers.get("content-type"),
            request=read,
        )
    except GatewayError as exc:
        return failed(exc)
    headers = {}
    if outcome.order_id and outcome.status == "applied":
        headers["Location"] = f"{str(request.base_url).rstrip('/')}{BASE}/Task/{outcome.order_id}"
    status = outcome.http_status  # held for review: 202, first time and every replay alike
    if outcome.duplicate and outcome.status == "applied":
        status = 200  # a conditional create that matched: nothing new was made
        headers["Idempotent-Replayed"] = "true"  # the body is the first answer, as it was
    elif outcome.status == "applied":
        status = 201 if places_order(outcome.message_id) else 200
    return fhir(rendered or b"", status, headers)


def router(adapter: Adapter) -> APIRouter:
    api = APIRouter(prefix=BASE, tags=["FHIR R4"])

    @api.get("/metadata")
    async def metadata(request: Request) -> Response:
        base = f"{str(request.base_url).rstrip('/')}{BASE}"
        return fhir(answers.render(capability.capability_statement(base)))

    @api.post("/auth/token")
    async def token(request: Request) -> Response:
        try:
            raw = await body_of_form(request)
            form = {k: v for k, v in parse_qsl(raw.decode("utf-8", "replace"))}
            answer = await tokens(request).issue(form, str(request.url).split("?")[0])
        except OAuthError as exc:
            if exc.error in REFUSED_AT_THE_DOOR:
                refuse(request, "too_large" if exc.status == 413 else exc.error, exc.description)
            return Response(orjson.dumps(exc.body()), exc.status, media_type="application/json")
        except TransientError:
            unavailable = OAuthError("temporarily_unavailable", "try again shortly", 503)
            return Response(orjson.dumps(unavailable.body()), 503, media_type="application/json")
        return Response(
            orjson.dumps(answer), 200, media_type="application/json", headers={"Cache-Control": "no-store"}
        )

    @api.post("")
    async def bundle(request: Request) -> Response:
        return await receive(request, adapter, Interaction(accepted=("Bundle",)), "Bundle")

    @api.post("/$process-message")
    async def process_message(request: Request) -> Response:
        return await receive(
            request, adapter, Interaction(operation="process-message", accepted=("Bundle",)), "Bundle"
        )

    @api.post("/Patient/$merge")
    async def merge(request: Request) -> Response:
        return await receive(
            request, adapter, Interaction(operation="merge", accepted=("Parameters",)), "Patient"
        )

    @api.post("/{resource_type}")
    async def create(request: Request, resource_type: str) -> Response:
        if resource_type not in WRITABLE:
            return failed(unsupported(resource_type))
        interaction = Interaction(
            method="POST",
            resource_type=resource_type,
            if_none_exist=request.headers.get("if-none-exist"),
            accepted=(resource_type,),
        )
        return await receive(request, adapter, interaction, resource_type)

    @api.put("/{resource_type}/{resource_id}")
    async def update(request: Request, resource_type: str, resource_id: str) -> Response:
        if resource_type not in WRITABLE:
            return failed(unsupported(resource_type))
        interaction = Interaction(
            method="PUT", resource_type=resource_type, resource_id=resource_id, accepted=(resource_type,)
        )
        return await receive(request, adapter, interaction, resource_type)

    @api.get("/Task/{task_id}")
    async def read_task(request: Request, task_id: str) -> Response:
        try:
            caller = await authenticate(request, "Task", "read")
            view = await queries.task(runtime(request).orders, caller.partner, task_id)
        except GatewayError as exc:
            return failed(exc)
        return fhir(answers.render(render_task(view.order, view.refs, caller.profile)))

    @api.get("/Task")
    async def search_tasks(request: Request) -> Response:
        try:
            caller = await authenticate(request, "Task", "read")
            profile, params = caller.profile, list(request.query_params.multi_items())
            views = await queries.search(runtime(request).orders, caller.partner, profile, params)
        except GatewayError as exc:
            return failed(exc)
        base = f"{str(request.base_url).rstrip('/')}{BASE}"
        entries = [
            {
                "fullUrl": f"{base}/Task/{v.order.order_id}",
                "resource": render_task(v.order, v.refs, profile),
                "search": {"mode": "match"},
            }
            for v in views
        ]
        found = {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
        return fhir(answers.render(found))

    @api.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def elsewhere(request: Request, path: str) -> Response:
        kind = path.split("/")[0]
        if kind in ANY_REQUEST or kind == "Task":
            return failed(
                MalformedMessage(f"{request.method} {BASE}/{path} is not an interaction served here")
            )
        return failed(unsupported(kind))

    return api


def unsupported(resource_type: str) -> UnsupportedMessage:
    served = ", ".join([*WRITABLE, "Task"])
    return UnsupportedMessage(
        f"{resource_type} is not supported by this server; it serves {served} (see {BASE}/metadata)",
        location=resource_type,
    )


async def body_of_form(request: Request) -> bytes:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "send the token request as application/x-www-form-urlencoded")
    try:
        return await bounded_body(request, TOKEN_REQUEST_LIMIT)
    except TooLarge:
        raise OAuthError(
            "invalid_request", f"the token request exceeds {TOKEN_REQUEST_LIMIT} bytes", 413
        ) from None
