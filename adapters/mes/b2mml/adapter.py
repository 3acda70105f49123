"""The `mes-b2mml` dialect: a manufacturer's MES speaking ISA-95 B2MML XML, V0600
(`http://www.mesa.org/xml/B2MML-V0600`) or V07 (`http://www.mesa.org/xml/B2MML`).

decode: XML (document.py) -> the events it carries (reading.py, words from mappings/mes/b2mml.yaml)
-> canonical commands (adapters/mes/events.py). The message id is ApplicationArea/BODID, or, for a
document without one (real vendors' exports), its verb and the first ID in its DataArea. A document
with no event of ours (an equipment alarm, a segment still running) is not ours: accepted, ignored.
answer: the outcome as JSON, or an RFC 9457 problem. Its transports are adapters/mes/inbound.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from adapters.mes.b2mml.document import Doc, parse
from adapters.mes.b2mml.reading import Found, Unmappable, mes_event, read
from adapters.mes.b2mml.table import B2mmlTable, load_table
from adapters.mes.events import EventTable, command, load_events
from gateway.sdk import (
    Command,
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
CONTENT_TYPE = "application/xml"


def message_id(doc: Doc) -> str:
    bod = doc.text(doc.root, "ApplicationArea", "BODID")
    if bod:
        return bod[:200]
    data = doc.root.find(doc.q("DataArea"))
    first = (
        next((e for e in data.iter(doc.q("ID")) if (e.text or "").strip()), None)
        if data is not None
        else None
    )
    if first is None:
        raise MalformedMessage(
            "the document has no ApplicationArea/BODID and no ID", location="/ApplicationArea"
        )
    return f"{doc.verb}:{(first.text or '').strip()}"[:200]


class MesB2mml:
    name = "mes-b2mml"
    dialect = "ISA-95 B2MML XML (V0600, V07): operations events, performance, material lots"
    content_type = "application/json"
    partner_kinds = (PartnerKind.manufacturer,)

    def __init__(self, events: EventTable, table: B2mmlTable) -> None:
        self.events = events
        self.table = table

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        doc = parse(raw, self.table.namespaces)
        msg = message_id(doc)
        try:
            found = read(doc, self.table)
            ours = [f for f in found if f.kind is not None]
            if not ours:
                return Decoded(msg, error=NotOurs("no_mes_event", detail=f"{doc.verb}: {len(found)} events"))
            commands = [self._command(f, ctx) for f in ours]
        except Unmappable as exc:
            return Decoded(msg, error=MappingError(str(exc), location=exc.location))
        return Decoded(msg, tuple(commands), fingerprint=fingerprint(commands))

    def _command(self, found: Found, ctx: InboundContext) -> Command:
        event = mes_event(found, self.table)
        try:
            return command(event, self.events.events[event.kind], ctx.partner.id)
        except ValidationError as exc:
            loc = exc.errors()[0]["loc"] if exc.errors() else ()
            field = str(loc[-1]) if loc else "?"
            raise Unmappable(f"the event's {field} cannot be mapped", found.location) from None
        except ValueError as exc:
            raise Unmappable(f"the event's identifiers: {exc}", found.location) from None

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        return outcome_json(outcome)

    def examples(self) -> Sequence[Example]:
        return examples_in(EXAMPLES, "*.xml")


_EVENTS = load_events()
adapter = MesB2mml(_EVENTS, load_table(events=frozenset(_EVENTS.events)))
