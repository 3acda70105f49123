"""The `mes-cloudevents` dialect: a manufacturer's MES event as a CloudEvent (structured JSON mode).

decode: JSON -> `wire.MesCloudEvent` -> its type's data model -> `MesEvent` -> the canonical
command that mappings/mes/events.yaml names. A type outside org.cgt.mes.* is not ours (accepted,
stored nowhere); an org.cgt.mes type we do not know is refused, since the manufacturer meant us.
answer: the outcome as JSON, or an RFC 9457 problem. Its transports are adapters/mes/inbound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from adapters.mes.cloudevents.schemas import contract_files
from adapters.mes.cloudevents.wire import DATA, TYPE_PREFIX, MaterialReceivedData, MesCloudEvent
from adapters.mes.events import EventTable, MesEvent, command, load_events
from gateway.sdk import (
    Decoded,
    Example,
    InboundContext,
    MalformedMessage,
    MappingError,
    NotOurs,
    Outcome,
    PartnerKind,
    examples_in,
    fingerprint,
    outcome_json,
)

EXAMPLES = Path(__file__).parent / "examples"
CONTENT_TYPE = "application/cloudevents+json"


def _pointer(exc: ValidationError, prefix: str = "") -> str:
    loc = exc.errors()[0]["loc"] if exc.errors() else ()
    return prefix + "/" + "/".join(str(p) for p in loc)


def _mes_event(name: str, envelope: MesCloudEvent) -> MesEvent:
    data: Any = DATA[name].model_validate(envelope.data)
    coi = envelope.subject or ""
    if isinstance(data, MaterialReceivedData):
        fields = {
            "scanned_coi": data.scanned.coi,
            "temperature_c": data.temperature_c,
            "condition": data.condition,
        }
        return MesEvent(name, coi, data.received_at, din=data.scanned.din, fields=fields)
    fields = data.model_dump(exclude={"batch_id"}, exclude_none=True)
    return MesEvent(name, coi, envelope.time, batch_id=getattr(data, "batch_id", None), fields=fields)


class MesCloudEvents:
    name = "mes-cloudevents"
    dialect = "MES events as CloudEvents 1.0 (structured JSON)"
    content_type = "application/json"
    partner_kinds = (PartnerKind.manufacturer,)

    def __init__(self, events: EventTable) -> None:
        self.events = events

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        try:
            envelope = MesCloudEvent.model_validate(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise MalformedMessage("the body is not JSON", detail=str(exc)) from None
        except ValidationError as exc:
            where = _pointer(exc)
            raise MalformedMessage(f"the body is not a CloudEvent (at {where})", location=where) from None
        if not envelope.type.startswith(TYPE_PREFIX):
            return Decoded(envelope.id, error=NotOurs("not_an_mes_event", detail=f"type {envelope.type}"))
        name = envelope.type.removeprefix(TYPE_PREFIX)
        canonical = self.events.events.get(name)
        if canonical is None or name not in DATA:
            error = MappingError(f"unknown MES event type {envelope.type}", location="/type")
            return Decoded(envelope.id, error=error)
        if not envelope.subject:
            return Decoded(envelope.id, error=MappingError("the event names no COI", location="/subject"))
        try:
            cmd = command(_mes_event(name, envelope), canonical, ctx.partner.id)
        except ValidationError as exc:
            where = _pointer(exc, "/data")
            error = MappingError(f"the event's data cannot be mapped (at {where})", location=where)
            return Decoded(envelope.id, error=error)
        except ValueError as exc:  # the COI or DIN is not one (its format or its check character)
            where = "/data/scanned/din" if "DIN" in str(exc) else "/subject"
            return Decoded(envelope.id, error=MappingError(f"the event's identifiers: {exc}", location=where))
        return Decoded(envelope.id, (cmd,), fingerprint=fingerprint([cmd]))

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        return outcome_json(outcome)

    def examples(self) -> Sequence[Example]:
        return examples_in(EXAMPLES, "*.json")

    def contracts(self) -> Mapping[str, bytes]:
        return contract_files()


adapter = MesCloudEvents(load_events())
