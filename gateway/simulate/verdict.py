"""The end of a run: every journey's final state read back from the gateway, every answer held
against what its step expected, and the mix-up audit (swaps injected, quarantined, applied; false
quarantines on clean traffic; acknowledged messages lost)."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from gateway.simulate.model import SWAPS, Expect, Fault, Journey, Step
from gateway.simulate.model import Boundary as Crossing
from gateway.simulate.senders import Answer

# The answer each expectation admits. HL7's AA says "accepted" for applied and ignored alike.
ADMITS: dict[Expect, frozenset[str]] = {
    Expect.applied: frozenset({"applied", "accepted"}),
    Expect.ignored: frozenset({"ignored", "accepted"}),
    Expect.quarantined: frozenset({"quarantined"}),
    Expect.refused: frozenset({"refused"}),
    Expect.replayed: frozenset({"replayed", "accepted"}),
}
# Steps that leave an event on the order's timeline when applied, and the event they leave.
ON_TIMELINE = {"shipment.declared": "shipment.booked", "adt.noise": None}


@dataclass
class Boundary:
    messages: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0


@dataclass
class Report:
    journeys: int = 0
    journeys_completed: int = 0
    journeys_held: int = 0
    journeys_failed: int = 0
    messages: int = 0
    seconds: float = 0.0
    messages_per_s: float = 0.0
    resends: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    faults_handled: dict[str, int] = field(default_factory=dict)
    swaps_injected: int = 0
    swaps_quarantined: int = 0
    swaps_applied: int = 0
    false_quarantines: int = 0
    unexpected: int = 0
    acked_lost: int = 0
    holds_cleared: int = 0  # orders put on hold by the gateway, resumed by operations staff
    excursions_expected: int = 0
    excursions_published: int = 0
    boundaries: dict[str, Boundary] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)  # a few unexpected answers, no patient data
    cois: list[str] = field(default_factory=list, repr=False)  # the run's orders (not in the JSON)

    @property
    def ok(self) -> bool:
        return (
            self.swaps_applied == 0
            and self.swaps_quarantined == self.swaps_injected
            and self.false_quarantines == 0
            and self.acked_lost == 0
            and self.unexpected == 0
            and self.journeys_completed == self.journeys
        )

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("cois")
        out["ok"] = self.ok
        return out

    def lines(self) -> list[str]:
        b = "; ".join(
            f"{k} {v.messages} msgs p50 {v.p50_ms:.1f} ms p99 {v.p99_ms:.1f} ms"
            for k, v in self.boundaries.items()
        )
        return [
            f"journeys: {self.journeys} ({self.journeys_completed} completed, {self.journeys_held} held, "
            f"{self.journeys_failed} not finished)",
            f"messages: {self.messages} in {self.seconds:.1f} s ({self.messages_per_s:,.0f}/s), {self.resends} resent",
            f"by boundary: {b}",
            "faults injected: "
            + ", ".join(f"{k} {v} (handled {self.faults_handled.get(k, 0)})" for k, v in self.faults.items()),
            f"mix-up audit: swaps injected {self.swaps_injected}, quarantined {self.swaps_quarantined}, "
            f"applied {self.swaps_applied}; false quarantines {self.false_quarantines}; "
            f"acknowledged and lost {self.acked_lost}; other unexpected answers {self.unexpected}",
            f"excursions: {self.excursions_published} published of {self.excursions_expected} injected; "
            f"holds cleared by operations staff: {self.holds_cleared}",
            "verdict: " + ("PASS" if self.ok else "FAIL"),
        ]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass(frozen=True)
class ReadBack:
    """What the audit needs of an order as the operator API shows it: its status and how many of
    each event its timeline has (`shipment.delivered`: the type without `org.cgt.`). Kept instead
    of the whole answer, so that 10,000 timelines do not sit in memory at once."""

    status: str
    events: Counter[str]


async def fetch_orders(
    base_urls: tuple[str, ...], operator_key: str, cois: list[str], concurrency: int = 16
) -> dict[str, ReadBack]:
    """coi -> what its order became (absent: no order), from whichever replica answers."""
    found: dict[str, ReadBack] = {}
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60, headers={"X-API-Key": operator_key}) as client:

        async def one(coi: str) -> None:
            for url in base_urls:
                try:
                    async with gate:
                        response = await client.get(f"{url}/api/orders/{coi}")
                except httpx.TransportError:
                    continue  # a replica that is gone: ask the next
                if response.status_code == 200:
                    found[coi] = read_back(response.json())
                return

        await asyncio.gather(*(one(c) for c in cois))
    return found


def read_back(answer: dict[str, Any]) -> ReadBack:
    types = (str(e.get("type", "")).removeprefix("org.cgt.") for e in answer.get("timeline") or [])
    return ReadBack(str(answer["order"]["status"]), Counter(types))


def judge(
    journeys: list[Journey],
    answers: list[Answer],
    orders: dict[str, ReadBack],
    seconds: float,
    resends: int,
) -> Report:
    r = Report(journeys=len(journeys), messages=len(answers), seconds=seconds, resends=resends)
    r.cois = [j.ids.coi for j in journeys]
    r.holds_cleared = sum(1 for a in answers if a.step.event == "order.resumed" and a.got == "applied")
    r.messages_per_s = len(answers) / seconds if seconds else 0.0
    latencies: dict[str, list[float]] = defaultdict(list)
    by_journey: dict[int, list[Answer]] = defaultdict(list)
    for a in answers:
        latencies[a.step.boundary.value].append(a.latency_s)
        by_journey[a.step.journey].append(a)
        _count(r, a)
    r.boundaries = {
        k: Boundary(len(v), round(_pct(v, 0.5), 2), round(_pct(v, 0.99), 2))
        for k, v in sorted(latencies.items())
    }
    statuses: Counter[str] = Counter()
    for j in journeys:
        found = orders.get(j.ids.coi)
        status = found.status if found else "absent"
        statuses[status] += 1
        if status == "infused":
            r.journeys_completed += 1
        elif status == "on_hold":
            r.journeys_held += 1
        else:
            r.journeys_failed += 1
        have = found.events if found else Counter()
        r.acked_lost += _lost(by_journey[j.n], have)
        if Fault.excursion in j.faults:
            r.excursions_expected += 1
            r.excursions_published += have["shipment.temperature_excursion"] > 0
    r.statuses = dict(statuses)
    return r


def resent_and_answered(a: Answer) -> bool:
    """A message sent again after its answer was lost (a replica killed mid-request) gets the
    first answer again: it was applied once, by the attempt that got no answer. On a queue the
    broker does the sending again: a replica killed after its commit and before its ack leaves
    the message to another, which answers it as the repeat it is, on the first attempt."""
    again = a.attempts > 1 or a.step.boundary is Crossing.mes_amqp
    return a.step.expect is Expect.applied and a.got == "replayed" and again


def _count(r: Report, a: Answer) -> None:
    step: Step = a.step
    fine = a.got in ADMITS[step.expect] or resent_and_answered(a)
    if step.fault is not None:
        r.faults[step.fault.value] = r.faults.get(step.fault.value, 0) + 1
        if fine:
            r.faults_handled[step.fault.value] = r.faults_handled.get(step.fault.value, 0) + 1
    if step.fault in SWAPS:
        r.swaps_injected += 1
        r.swaps_quarantined += a.got == "quarantined"
        r.swaps_applied += a.got in ("applied", "accepted")
    elif a.got == "quarantined":
        r.false_quarantines += 1
    if not fine and step.fault not in SWAPS and a.got != "quarantined":
        r.unexpected += 1
    if not fine and len(r.examples) < 20:
        r.examples.append(
            f"journey {step.journey} step {step.key} {step.event} ({step.boundary.value}): "
            f"expected {step.expect.value}, got {a.got} {a.detail}".strip()
        )


def _lost(answers: list[Answer], have: Counter[str]) -> int:
    """Acknowledged as applied but absent from the order's timeline (counted by event type)."""
    want: Counter[str] = Counter()
    for a in answers:
        took = a.got == "applied" or (a.got == "accepted" and a.step.expect is Expect.applied)
        if not (took or resent_and_answered(a)):
            continue
        event = ON_TIMELINE.get(a.step.event, a.step.event)
        if event is not None and a.step.expect is not Expect.replayed:
            want[event] += 1
    return sum(max(0, n - have[e]) for e, n in want.items())


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
