"""The `tive-telemetry` dialect: a cold-chain logger's entries in Tive's webhook shape (one entry,
or a batch as a JSON array), signed with Standard Webhooks, POSTed to
`/couriers/{partner}/telemetry`.

decode: JSON -> `wire.Entry`s -> readings -> one `shipment.readings_reported` command per shipment
and device (adapters/couriers/loggers.py names the shipment). Each entry gives a reading of the
logger's own sensor (probe `device`) and, when it has one, of its external probe (probe `probe`).
answer: the outcome as JSON, or an RFC 9457 problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter
from pydantic import TypeAdapter, ValidationError

from adapters.couriers.loggers import ALARMS, ShipmentKeys, batch_id, is_sscc, readings_commands
from adapters.couriers.tive.wire import Entry
from gateway.sdk import (
    Decoded,
    Example,
    InboundContext,
    MalformedMessage,
    MappingError,
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
MAX_ENTRIES = 2_000  # a batch of more is refused: the sender splits it
LIGHT_LUX = 5.0  # above this, the box has been opened (a closed shipper reads 0-1 lux)
ENTRIES = TypeAdapter(list[Entry])


def _pointer(exc: ValidationError) -> str:
    loc = exc.errors()[0]["loc"] if exc.errors() else ()
    return "/" + "/".join(str(p) for p in loc)


def _entries(raw: bytes) -> list[Entry]:
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage("the body is not JSON", detail=str(exc)) from None
    if isinstance(body, list) and not 0 < len(body) <= MAX_ENTRIES:
        raise MalformedMessage(f"a batch holds 1 to {MAX_ENTRIES} entries", location="/")
    try:
        return ENTRIES.validate_python(body) if isinstance(body, list) else [Entry.model_validate(body)]
    except ValidationError as exc:
        where = _pointer(exc)
        raise MalformedMessage(f"the body is not a logger entry (at {where})", location=where) from None


def keys_of(entry: Entry) -> ShipmentKeys:
    shipment, shipper = entry.Shipment, entry.Shipper
    label = shipment.Label if shipment else None
    serial = shipper.Serial if shipper else None
    return ShipmentKeys(
        logger=entry.DeviceId,
        sscc=serial if serial and is_sscc(serial) else None,
        tracking=shipment.TrackingNumber if shipment else None,
        coi=label.Coi if label else None,
        din=label.Din if label else None,
    )


def readings_of(entry: Entry) -> Iterator[payloads.Reading]:
    at = datetime.fromtimestamp(entry.EntryTimeEpoch / 1000, UTC)
    shipper = entry.Shipper
    common: dict[str, Any] = {
        "at": at,
        "battery_pct": entry.Battery.Percentage if entry.Battery else None,
        "light": entry.Light.Lux > LIGHT_LUX if entry.Light and entry.Light.Lux is not None else None,
        "shock_g": entry.Accelerometer.G if entry.Accelerometer else None,
        "ln2_level_pct": shipper.Ln2LevelPercentage if shipper else None,
        "alarm": ALARMS.alarm("shipper_states", shipper.State) if shipper and shipper.State else None,
    }
    yield payloads.Reading(probe="device", temperature_c=entry.Temperature.Celsius, **common)
    probe = entry.ProbeTemperature
    if probe is not None and probe.Celsius is not None:
        yield payloads.Reading(at=at, probe="probe", temperature_c=probe.Celsius)


class TiveTelemetry:
    name = "tive-telemetry"
    dialect = "cold-chain logger readings (Tive webhook shape, JSON, Standard Webhooks)"
    content_type = "application/json"
    partner_kinds = (PartnerKind.courier,)

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        entries = _entries(raw)
        found = [(keys_of(e), r) for e in entries for r in readings_of(e)]
        try:
            commands = readings_commands(ctx.partner.id, found)
        except ValueError:  # the only values checked here are the label's
            where = "/Shipment/Label"
            error = MappingError(f"the label is not a COI or DIN (at {where})", location=where)
            return Decoded(batch_id("tive", raw), error=error)
        said = fingerprint(commands)
        return Decoded(batch_id("tive", said), commands, fingerprint=said)

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        return outcome_json(outcome)

    def examples(self) -> Sequence[Example]:
        return examples_in(EXAMPLES, "*.json")

    def http_routes(self) -> APIRouter:
        return webhook_router(self, WebhookRoute("/couriers/{partner}/telemetry", StandardWebhooks()))


adapter = TiveTelemetry()
