"""Declaring a shipment before its courier speaks of it: `POST /api/orders/{coi}/shipments`.

For sites that book by phone or portal. The ordering site (its API key) or an operator (the
operator key, acting for the order's site) declares the leg, the courier and its tracking number,
and optionally the temperature class (by default the product's for that leg), the shipper's SSCC
and the logger's serial. The declaration becomes a `shipment.booked` command that goes the one
way every message goes (idempotency, authorisation, reconciliation, audit, outbox), binding the
tracking number, SSCC and logger id to the order in the crosswalk: from then on a courier's
message naming any of them reaches this order, and only this courier may send it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from gateway.canonical.command import Command
from gateway.canonical.envelope import utcnow
from gateway.canonical.ids import ExternalRef, coi_ref
from gateway.canonical.order import Shipment, ShipmentDirection, TherapyOrder
from gateway.canonical.parties import PartnerKind
from gateway.canonical.payloads import ShipmentBooked
from gateway.entrypoints.bootstrap import Gateway
from gateway.entrypoints.problems import PROBLEM
from gateway.errors import MalformedMessage, NotAuthenticated, NotFound, RejectedMessage
from gateway.http_body import bounded_body
from gateway.outcome import Outcome
from gateway.partners import Partners
from gateway.store import repository as reads
from gateway.store.records import InboundRecord

ADAPTER = "shipments-api"
LEGS = {"inbound": ShipmentDirection.to_manufacturer, "outbound": ShipmentDirection.to_site}


class Declaration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    leg: Literal["inbound", "outbound"]
    courier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)
    temperature_class: str | None = Field(default=None, max_length=20)
    sscc: str | None = Field(default=None, pattern=r"^\d{18}$")
    logger_id: str | None = Field(default=None, min_length=1, max_length=100)


def _declared(raw: bytes) -> Declaration:
    try:
        return Declaration.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "/" + "/".join(str(p) for p in first["loc"])
        raise MalformedMessage(f"{where}: {first['msg']}", location=where) from None


def _courier(partners: Partners, courier: str) -> None:
    try:
        found = partners.get(courier)
    except NotAuthenticated:
        raise RejectedMessage("no partner has this courier id", location="/courier") from None
    if found.kind is not PartnerKind.courier:
        raise RejectedMessage(f"{courier} is not a courier", location="/courier")


def shipment_command(declared: Declaration, order: TherapyOrder, temperature_class: object) -> Command:
    """The `shipment.booked` the declaration means, binding the courier's identifiers."""
    courier = declared.courier
    shipment = Shipment(
        shipment_id=f"{courier}-{declared.tracking_number}"[:100],
        direction=LEGS[declared.leg],
        courier=courier,
        tracking_number=declared.tracking_number,
        sscc=declared.sscc,
        logger_id=declared.logger_id,
        temperature_class=temperature_class,
    )
    binds = [ExternalRef(namespace=f"courier:{courier}:tracking", value=declared.tracking_number)]
    if declared.sscc:
        binds.append(ExternalRef(namespace="gs1:sscc", value=declared.sscc))
    if declared.logger_id:
        binds.append(ExternalRef(namespace=f"courier:{courier}:logger", value=declared.logger_id))
    return Command(
        event="shipment.booked",
        payload=ShipmentBooked(occurred_at=utcnow(), shipment=shipment),
        refs=(coi_ref(order.coi), *binds),
        binds=tuple(binds),
    )


def _answer(outcome: Outcome, command: Command) -> bytes:
    if outcome.status == "applied":
        assert isinstance(command.payload, ShipmentBooked)
        body = {
            "coi": outcome.coi,
            "shipment": command.payload.shipment.model_dump(mode="json", exclude_none=True),
            "event_ids": list(outcome.event_ids),
        }
        return orjson.dumps(body)
    problem = {
        "type": "about:blank",
        "title": outcome.error or outcome.status,
        "status": outcome.http_status,
        "detail": outcome.reason,
        "inbound_id": outcome.inbound_id,
    }
    return orjson.dumps({k: v for k, v in problem.items() if v is not None})


def shipment_routes(
    operator: Callable[[Request, str | None], bool], gateway: Callable[[Request], Gateway]
) -> APIRouter:
    """`operator(request, key)`: whether the key is the operator key."""
    router = APIRouter()

    @router.post("/api/orders/{coi}/shipments", status_code=201)
    async def declare(
        request: Request,
        coi: str,
        x_api_key: Annotated[str | None, Header()] = None,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Response:
        g = gateway(request)
        settings, partners, intake, engine = g.settings, g.partners, g.intake, g.engine
        is_operator = operator(request, x_api_key)
        sender = None if is_operator else partners.by_api_key(x_api_key)
        raw = await bounded_body(request, settings.max_body_bytes)
        declared = _declared(raw)
        _courier(partners, declared.courier)
        async with engine.connect() as conn:
            order = await reads.order_by_coi(conn, coi.upper())
        if order is None:
            raise NotFound("no order has this COI")
        chain = intake.rules.cold_chain
        if declared.temperature_class is not None:
            temperature_class = chain.named(declared.temperature_class)
            if temperature_class is None:
                raise RejectedMessage("unknown temperature class", location="/temperature_class")
        else:
            temperature_class = chain.for_leg(order.product, LEGS[declared.leg])
        command = shipment_command(declared, order, temperature_class)
        record = InboundRecord(
            partner=sender.id if sender else order.ordering_site.id,  # an operator acts for the site
            transport="operator" if is_operator else "http",
            adapter=ADAPTER,
            message_id=idempotency_key or str(uuid.uuid4()),
            received_at=utcnow(),
            content_type=request.headers.get("content-type"),
            raw=raw,
            fingerprint=raw,
        )
        outcome, rendered = await intake.receive(record, lambda: [command], lambda o: _answer(o, command))
        media = "application/json" if outcome.status == "applied" else PROBLEM
        if outcome.duplicate:
            return Response(rendered or b"", 200, media_type=media, headers={"Idempotent-Replayed": "true"})
        return Response(rendered or b"", outcome.http_status, media_type=media)

    return router
