"""An EPCIS document's events -> canonical shipment commands, event by event, so that a bad event
is told apart from the good ones (the capture's error behaviour decides what becomes of them).

For each event: the CBV check, the shipment it names (identify.py), then
- its bizStep, through the table (mappings/couriers/epcis.yaml): picked_up, in_transit, delivered;
  a trouble disposition (damaged, stolen...) makes it shipment.exception;
- possessing parties in sourceList / destinationList: shipment.custody_transferred;
- its sensorElementList: ONE shipment.readings_reported a device (readings.py).

Error declarations: an event carrying `errorDeclaration` becomes `shipment.correction_declared`
(on the timeline; the shipment's state is left as it is) and its readings are not taken; an
event of the same document that such a declaration names (by eventID) is superseded and
dropped. Its corrective events are mapped like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from pydantic import ValidationError

from adapters.couriers.epcis.identify import Identified, identify
from adapters.couriers.epcis.readings import readings
from adapters.couriers.epcis.vocabulary import Vocabulary
from adapters.couriers.epcis.wire import Document, Event
from gateway.sdk import Command


@dataclass(frozen=True)
class EventError:
    """Why one event cannot be captured: `location` is a JSON pointer into the document."""

    index: int
    location: str
    reason: str


@dataclass(frozen=True)
class Mapped:
    commands: tuple[Command, ...]
    errors: tuple[EventError, ...]
    events: int  # in the document
    taken: int  # events that named a shipment and mapped


def map_document(document: Document, vocabulary: Vocabulary, courier: str) -> Mapped:
    base = document.events_path
    parsed: list[tuple[int, Event]] = []
    errors: list[EventError] = []
    for index, raw in enumerate(document.events):
        try:
            parsed.append((index, _checked(raw, vocabulary)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "/".join(str(p) for p in first["loc"])
            errors.append(EventError(index, f"{base}/{index}/{where}".rstrip("/"), first["msg"]))
        except FieldError as exc:
            errors.append(EventError(index, f"{base}/{index}/{exc.field}", str(exc)))
        except ValueError as exc:
            errors.append(EventError(index, f"{base}/{index}", str(exc)))
    declared = {e.event_id for _, e in parsed if e.error_declaration is not None and e.event_id is not None}
    commands: list[Command] = []
    taken = 0
    for index, event in parsed:
        if event.error_declaration is None and event.event_id in declared:
            continue  # superseded by its own error declaration in this document
        try:
            found = identify(event, vocabulary, courier)
            if found is None:
                continue  # names no shipment: not the gateway's business
            made = _commands(event, found, vocabulary)
        except (ValueError, ValidationError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            errors.append(EventError(index, f"{base}/{index}", reason))
            continue
        commands.extend(made)
        taken += bool(made)
    return Mapped(tuple(commands), tuple(sorted(errors, key=lambda e: e.index)), len(document.events), taken)


def _checked(raw: dict[str, Any], vocabulary: Vocabulary) -> Event:
    """The event, read and checked against the CBV; ValidationError or ValueError otherwise."""
    if not isinstance(raw, dict):
        raise ValueError("an event must be a JSON object")
    event = Event.model_validate(raw)
    if event.action is None and event.type != "TransformationEvent":
        raise ValueError(f"an {event.type} needs its action (ADD, OBSERVE or DELETE)")
    if event.biz_step is not None:
        _term(vocabulary, "bizsteps", event.biz_step, "bizStep")
    if event.disposition is not None:
        _term(vocabulary, "dispositions", event.disposition, "disposition")
    if event.persistent_disposition is not None:
        for value in (*event.persistent_disposition.set, *event.persistent_disposition.unset):
            _term(vocabulary, "dispositions", value, "persistentDisposition")
    for i, transaction in enumerate(event.biz_transactions):
        if transaction.type is not None:
            _term(vocabulary, "transaction_types", transaction.type, f"bizTransactionList/{i}/type")
    for i, source in enumerate(event.sources):
        _term(vocabulary, "source_destination_types", source.type, f"sourceList/{i}/type")
    for i, destination in enumerate(event.destinations):
        _term(vocabulary, "source_destination_types", destination.type, f"destinationList/{i}/type")
    return event


class FieldError(ValueError):
    """A value of the event's `field` (a JSON pointer below the event) that the CBV refuses."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


def _term(vocabulary: Vocabulary, kind: str, value: str, field: str) -> None:
    try:
        vocabulary.term(kind, value)
    except ValueError as exc:
        raise FieldError(field, str(exc)) from None


def _commands(event: Event, found: Identified, vocabulary: Vocabulary) -> list[Command]:
    step = vocabulary.term("bizsteps", event.biz_step) if event.biz_step else None
    disposition = vocabulary.term("dispositions", event.disposition) if event.disposition else None
    place = event.biz_location or event.read_point
    update: dict[str, Any] = {
        "occurred_at": event.event_time.astimezone(UTC),
        "shipment_id": found.key,
        "location": place.id[:200] if place else None,
        "carrier_code": step,
    }
    if event.error_declaration is not None:
        declaration = event.error_declaration
        note = f"event {event.event_id or '(no id)'} declared erroneous"
        note += f" ({declaration.reason})" if declaration.reason else ""
        if declaration.corrective_event_ids:
            note += "; corrected by " + ", ".join(declaration.corrective_event_ids)
        at = declaration.declaration_time.astimezone(UTC)
        payload = {**update, "occurred_at": at, "note": note[:500]}
        return [_command("shipment.correction_declared", payload, found)]
    out: list[Command] = []
    canonical = vocabulary.bizsteps.get(step) if step else None
    if disposition in vocabulary.exception_dispositions:
        canonical = "shipment.exception"
        update["note"] = f"disposition {disposition}"
    if canonical is not None:
        out.append(_command(canonical, update, found))
    handed = [
        s.source
        for s in event.sources
        if vocabulary.term("source_destination_types", s.type) in vocabulary.custody_types
    ]
    taking = [
        d.destination
        for d in event.destinations
        if vocabulary.term("source_destination_types", d.type) in vocabulary.custody_types
    ]
    if handed or taking:
        custody = {**update, "handed_over_by": _one(handed), "custodian": _one(taking)}
        out.append(_command("shipment.custody_transferred", custody, found))
    for device, taken in readings(event, vocabulary).items():
        batch = {
            "occurred_at": update["occurred_at"],
            "shipment_id": found.key,
            "device_id": device[:100],
            "readings": taken,
        }
        out.append(_command("shipment.readings_reported", batch, found))
    return out


def _one(parties: list[str]) -> str | None:
    return parties[0][:200] if parties else None


def _command(event: str, payload: dict[str, Any], found: Identified) -> Command:
    return Command.model_validate(
        {"event": event, "payload": payload, "refs": found.refs, "binds": found.binds}
    )
