"""Traffic that is not the gateway's business: acknowledged as accepted, stored nowhere, counted."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import metrics
from gateway.errors import NotOurs
from gateway.outcome import Outcome
from gateway.sdk import Decoded, Example, InboundContext
from gateway.service.inbound import accept
from gateway.service.intake import Intake
from gateway.store import tables as t
from tests.support.drive import AUTHORITY, PARTNERS


class LabFeed:
    """A dialect whose every message is a lab order: raised as bytes it will not read, or returned
    with what it did read (its id)."""

    name, dialect, content_type = "lab-feed", "test", "text/plain"

    def __init__(self, *, at_parse: bool) -> None:
        self.at_parse = at_parse

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        if self.at_parse:
            raise NotOurs("not_a_therapy_order")
        return Decoded(message_id=raw.decode(), error=NotOurs("not_a_therapy_order"))

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        return f"{outcome.status}:{outcome.code}".encode()

    def examples(self) -> Sequence[Example]:
        return []


def ignored_count(partner: str, adapter: str, reason: str) -> float:
    return metrics.IGNORED.labels(partner, adapter, reason)._value.get()


async def test_not_ours_is_answered_as_accepted_and_stores_nothing(engine: AsyncEngine) -> None:
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    before = ignored_count("demo-hospital", "lab-feed", "not_a_therapy_order")
    for at_parse in (True, False):
        for message_id in ("lab-1", "lab-1"):  # a repeat is ignored again, not answered from a store
            outcome, answer = await accept(
                gate,
                LabFeed(at_parse=at_parse),
                PARTNERS.get("demo-hospital"),
                message_id.encode(),
                transport="http",
            )
            assert outcome.status == "ignored" and outcome.inbound_id is None
            assert outcome.http_status == 200 and not outcome.duplicate
            assert answer == b"ignored:not_a_therapy_order"
    assert ignored_count("demo-hospital", "lab-feed", "not_a_therapy_order") == before + 4
    async with engine.connect() as conn:
        for table in (t.inbound_messages, t.idempotency_keys, t.audit_records, t.outbox):
            assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == 0
