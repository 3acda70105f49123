"""A synthetic order's way to the manufacturer, as canonical commands (any intake's `send`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from gateway.canonical.command import Command
from gateway.canonical.ids import ExternalRef, mod37_2_check
from gateway.outcome import Outcome
from tests.support.builders import T0, coi, event, place

MAKER = "demo-manufacturer"
Send = Callable[..., Awaitable[Outcome]]
TESTS = ("sterility", "mycoplasma", "endotoxin", "viability", "car_expression", "potency")  # S9999's


def din_of(n: int) -> str:
    """Order n's collection DIN (13 characters, invented)."""
    return f"A99992600{n:04d}"


def keyed(din: str) -> str:
    """The DIN as printed for keyboard entry: with its MOD 37-2 check character."""
    return din + mod37_2_check(din)


def din_ref(din: str) -> ExternalRef:
    return ExternalRef(namespace="isbt128:din", value=din)


async def collected(send: Send, gate: object, n: int) -> Outcome:
    """Order n placed by the demo hospital, its cells collected under din_of(n) (bound)."""
    placed = await send(gate, place(n))
    assert placed.status == "applied", placed
    din = din_ref(din_of(n))
    done = await send(
        gate,
        event(
            "collection.completed", coi(placed.coi or ""), din, binds=(din,), collected_at=T0, din=din.value
        ),
    )
    assert done.status == "applied", done
    return placed


def receipt(order_coi: str, *refs: ExternalRef, **scans: Any) -> Command:
    """The manufacturer's receipt of order_coi's bag; `scans` override the matching ones."""
    given = {"scanned_coi": order_coi, "temperature_c": -160.2, "condition": "intact", **scans}
    return event("manufacturing.material_received", coi(order_coi), *refs, **given)


async def in_manufacturing(send: Send, gate: object, n: int) -> Outcome:
    placed = await collected(send, gate, n)
    the_coi = placed.coi or ""
    for command in (
        receipt(the_coi, din=keyed(din_of(n))),
        event("manufacturing.started", coi(the_coi), batch_id=f"B{n}", occurred_at=T0 + timedelta(days=2)),
    ):
        outcome = await send(gate, command, partner=MAKER)
        assert outcome.status == "applied", outcome
    return placed


def qc(order_coi: str, test: str, result: str = "pass", n: int = 1) -> Command:
    return event("manufacturing.qc_result", coi(order_coi), batch_id=f"B{n}", test=test, result=result)


def released(order_coi: str, n: int = 1) -> Command:
    return event(
        "manufacturing.released", coi(order_coi), batch_id=f"B{n}", certificate_of_analysis=f"COA-{n}"
    )
