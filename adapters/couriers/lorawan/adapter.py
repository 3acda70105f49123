"""The `tts-lorawan` dialect: The Things Stack v3 webhook of a LoRaWAN temperature logger
(Milesight TS201, EM300-TH), POSTed to `/couriers/{partner}/telemetry/lorawan` with an API key
(`Authorization: Bearer`, a header configured on the webhook) or signed with Standard Webhooks.

decode: the uplink -> its `frm_payload` (base64) -> Milesight frames (milesight.py) -> readings
-> one `shipment.readings_reported` command for the logger's shipment, named by the logger's
DevEUI (`courier:<partner>:logger`). The webhook's other messages (joins, downlink events), an
uplink without application data, or one that carries only device information are acknowledged
and ignored. answer: the outcome as JSON, or an RFC 9457 problem.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import APIRouter
from pydantic import ValidationError

from adapters.couriers.loggers import ShipmentKeys, readings_commands
from adapters.couriers.lorawan import milesight
from adapters.couriers.lorawan.wire import Webhook
from gateway.sdk import (
    ApiKey,
    Decoded,
    Example,
    InboundContext,
    MalformedMessage,
    MappingError,
    NotOurs,
    Outcome,
    PartnerKind,
    StandardWebhooks,
    WebhookRoute,
    examples_in,
    fingerprint,
    outcome_json,
    payloads,
    webhook_router,
)

EXAMPLES = Path(__file__).parent / "examples"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILESIGHT_PORT = 85  # Milesight devices send their data on this port


def unix_ms(at: datetime) -> int:
    return (at - EPOCH) // timedelta(milliseconds=1)


def parse(raw: bytes) -> Webhook:
    try:
        return Webhook.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else None
        if first is not None and first["type"] == "json_invalid":
            raise MalformedMessage("the body is not JSON", detail=first["msg"]) from None
        where = "/" + "/".join(str(p) for p in (first["loc"] if first else ()))
        raise MalformedMessage(
            f"the body is not a Things Stack message (at {where})", location=where
        ) from None


def frames(webhook: Webhook) -> list[milesight.Frame] | NotOurs:
    """The uplink's telemetry frames, or why the message is none of our business. Raises
    MappingError when the application payload cannot be read."""
    up = webhook.uplink_message
    if up is None:
        return NotOurs("not_an_uplink")
    if up.frm_payload is None or up.f_port != MILESIGHT_PORT:
        return NotOurs("no_logger_data", detail=f"f_port {up.f_port}")
    try:
        data = base64.b64decode(up.frm_payload, validate=True)
    except (binascii.Error, ValueError):
        where = "/uplink_message/frm_payload"
        raise MappingError(f"frm_payload is not base64 (at {where})", location=where) from None
    try:
        return milesight.decode(data, unix_ms(up.received_at or webhook.received_at))
    except milesight.PayloadError as exc:
        where = "/uplink_message/frm_payload"
        raise MappingError(f"frm_payload cannot be read: {exc} (at {where})", location=where) from None


def reading(found: milesight.Measured) -> payloads.Reading:
    at = EPOCH + timedelta(milliseconds=found.ts)
    return payloads.Reading(
        at=at,
        probe="device",
        temperature_c=found.temperature_c,
        battery_pct=found.battery_pct,
        alarm=found.alarm,
    )


class TtsLorawan:
    name = "tts-lorawan"
    dialect = "LoRaWAN logger uplinks (The Things Stack v3 webhook; Milesight TS201 / EM300-TH payloads)"
    content_type = "application/json"
    partner_kinds = (PartnerKind.courier,)

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        webhook = parse(raw)
        message_id = webhook.uplink_id
        try:
            found = frames(webhook)
        except MappingError as exc:
            return Decoded(message_id, error=exc)
        if isinstance(found, NotOurs):
            return Decoded(message_id, error=found)
        measured = [m for m in map(milesight.measured, found) if m is not None]
        if not measured:
            return Decoded(message_id, error=NotOurs("no_readings", detail="device information only"))
        keys = ShipmentKeys(logger=webhook.logger)
        commands = readings_commands(ctx.partner.id, [(keys, reading(m)) for m in measured])
        said = fingerprint(commands)
        return Decoded(message_id, commands, fingerprint=said)

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        return outcome_json(outcome)

    def examples(self) -> Sequence[Example]:
        return examples_in(EXAMPLES, "*.json")

    def http_routes(self) -> APIRouter:
        # The Things Stack sends the headers configured on its webhook and signs nothing: an API
        # key (Authorization: Bearer), or Standard Webhooks from a relay that can sign.
        route = WebhookRoute("/couriers/{partner}/telemetry/lorawan", ApiKey(), StandardWebhooks())
        return webhook_router(self, route)


adapter = TtsLorawan()
