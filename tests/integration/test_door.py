"""The door (gateway.ports.Door, over the intake): a message an adapter's transport decoded
beforehand (off the event loop, as the MLLP listener does with a large frame) is taken as decoded,
never decoded again; one handed in raw is decoded by the door."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.envelope import utcnow
from gateway.sdk import Decoded, Example, InboundContext, Outcome
from gateway.service.door import IntakeDoor
from gateway.service.intake import Intake
from tests.support.builders import place
from tests.support.drive import AUTHORITY, PARTNERS


class Counting:
    """A dialect whose message `door-<n>` places order n; it counts its decodes."""

    name, dialect, content_type = "counting", "test", "text/plain"

    def __init__(self) -> None:
        self.decodes = 0

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        self.decodes += 1
        return Decoded(message_id=raw.decode(), commands=(place(int(raw.split(b"-")[1])),))

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        return f"{outcome.status}:{decoded.message_id if decoded else None}".encode()

    def examples(self) -> Sequence[Example]:
        return []


async def test_a_message_decoded_beforehand_is_not_decoded_again(engine: AsyncEngine) -> None:
    door = IntakeDoor(Intake(engine, coi_facility="A9999", authority=AUTHORITY))
    adapter, partner = Counting(), PARTNERS.get("demo-hospital")
    decoded = adapter.decode(b"door-1", InboundContext(partner, "test", utcnow()))  # as in a worker
    outcome, answer = await door.accept(adapter, partner, b"door-1", transport="test", decoded=decoded)
    assert (adapter.decodes, outcome.status, answer) == (1, "applied", b"applied:door-1")
    outcome, answer = await door.accept(adapter, partner, b"door-2", transport="test")
    assert (adapter.decodes, outcome.status, answer) == (2, "applied", b"applied:door-2")
