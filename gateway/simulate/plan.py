"""What a simulation sends: each journey as the messages its parties send, in simulated time,
with faults injected into some (gateway.simulate.faults), each step saying what the gateway must
make of it.

A step is an *intent* (a canonical event, the identities it names, a few fields); which dialect
carries it is the wire's business (gateway.simulate.wire and .dialects), so the plan does not
change when a boundary moves to another dialect.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from gateway.simulate.faults import inject
from gateway.simulate.identities import Identities, identities
from gateway.simulate.model import (
    ALL_FAULTS,
    Boundary,
    D,
    Expect,
    Fault,
    H,
    Journey,
    M,
    Parties,
    Readings,
    Step,
)

# the release tests a manufacturer reports (the demo products' lists, and identity for the others)
QC_TESTS = ("sterility", "mycoplasma", "endotoxin", "viability", "identity", "car_expression", "potency")
EARLIER = timedelta(days=4)  # a swap borrows from a journey at least this far ahead


def _readings(
    start: datetime, hours: float, rng: random.Random, low: float, high: float
) -> list[tuple[datetime, float]]:
    """A logger's readings every 5-15 minutes for `hours`, within [low, high]."""
    out, t, end = [], start, start + timedelta(hours=hours)
    while t < end:
        out.append((t, round(rng.uniform(low, high), 2)))
        t += timedelta(minutes=rng.randint(5, 15))
    return out


def _telemetry(
    j: int,
    ids: Identities,
    sender: str,
    leg_start: timedelta,
    hours: float,
    start: datetime,
    rng: random.Random,
    band: tuple[float, float],
    batch_hours: float,
    leg: str,
) -> list[Step]:
    """The leg's readings, sent in batches of `batch_hours` as the logger uploads them."""
    readings = _readings(start + leg_start, hours, rng, *band)
    steps: list[Step] = []
    batch: list[tuple[datetime, float]] = []
    upload = start + leg_start + timedelta(hours=batch_hours)
    for reading in [*readings, None]:
        if reading is None or reading[0] >= upload:
            if batch:
                steps.append(
                    Step(
                        j,
                        upload - start,
                        Boundary.courier,
                        sender,
                        "shipment.readings_reported",
                        ids,
                        {"leg": leg, "readings": Readings.of(batch)},
                    )
                )
            batch, upload = [], upload + timedelta(hours=batch_hours)
        if reading is not None:
            batch.append(reading)
    return steps


def journey(
    n: int, parties: Parties, start: datetime, rng: random.Random, run: int, batch_hours: float = 6.0
) -> Journey:
    """One patient's clean journey, about four weeks from order to infusion."""
    ids = identities(n, rng, run)
    s, c, m = parties.site, parties.courier, parties.manufacturer
    collect, release = 7 * D + rng.randint(0, 48) * H, 24 * D + rng.randint(0, 72) * H
    steps = [
        Step(n, 0 * H, Boundary.site_hl7, s, "order.placed", ids),
        Step(n, 10 * M, Boundary.site_hl7, s, "adt.noise", ids, expect=Expect.ignored),
        Step(n, 2 * H, Boundary.mes, m, "slot.confirmed", ids, {"slot_start": start + 9 * D}),
        Step(
            n, 2 * D, Boundary.site_hl7, s, "collection.scheduled", ids, {"scheduled_start": start + collect}
        ),
        Step(
            n,
            collect - 1 * D,
            Boundary.site_http,
            s,
            "shipment.declared",
            ids,
            {"leg": "inbound", "courier": c},
        ),
        Step(
            n,
            collect + 4 * H,
            Boundary.site_http,
            s,
            "collection.completed",
            ids,
            {"collected_at": start + collect + 4 * H},
        ),
        Step(n, collect + 6 * H, Boundary.courier, c, "shipment.picked_up", ids, {"leg": "inbound"}),
        *_telemetry(n, ids, c, collect + 6 * H, 20, start, rng, (2.5, 7.5), batch_hours, "inbound"),
        Step(n, collect + 27 * H, Boundary.courier, c, "shipment.delivered", ids, {"leg": "inbound"}),
        Step(
            n,
            collect + 28 * H,
            Boundary.mes,
            m,
            "manufacturing.material_received",
            ids,
            {"temperature_c": round(rng.uniform(3.0, 6.0), 1), "condition": "intact"},
        ),
        Step(n, collect + 2 * D, Boundary.mes, m, "manufacturing.started", ids),
        Step(
            n, collect + 5 * D, Boundary.mes, m, "manufacturing.step_completed", ids, {"step": "activation"}
        ),
        Step(n, collect + 9 * D, Boundary.mes, m, "manufacturing.step_completed", ids, {"step": "expansion"}),
        *[
            Step(
                n,
                release - (len(QC_TESTS) - i) * H,
                Boundary.mes,
                m,
                "manufacturing.qc_result",
                ids,
                {"test": test},
            )
            for i, test in enumerate(QC_TESTS)
        ],
        Step(n, release, Boundary.mes, m, "manufacturing.released", ids),
        Step(
            n,
            release + 2 * H,
            Boundary.site_http,
            s,
            "shipment.declared",
            ids,
            {"leg": "outbound", "courier": c},
        ),
        Step(n, release + 20 * H, Boundary.mes, m, "manufacturing.shipped", ids, {"courier": c}),
        Step(n, release + 1 * D, Boundary.courier, c, "shipment.picked_up", ids, {"leg": "outbound"}),
        *_telemetry(n, ids, c, release + 1 * D, 20, start, rng, (-190.0, -160.0), batch_hours, "outbound"),
        Step(n, release + 2 * D, Boundary.courier, c, "shipment.delivered", ids, {"leg": "outbound"}),
        Step(
            n,
            release + 2 * D + 2 * H,
            Boundary.site_hl7,
            s,
            "infusion.scheduled",
            ids,
            {"planned_at": start + release + 3 * D},
        ),
        Step(
            n,
            release + 3 * D + 2 * H,
            Boundary.site_http,
            s,
            "infusion.completed",
            ids,
            {"infused_at": start + release + 3 * D},
        ),
    ]
    for i, step in enumerate(steps):
        step.key = f"SIM{run:02d}-{n:06d}-{i:03d}"
    return Journey(n, ids, parties, start, steps)


def plan(
    count: int,
    parties: list[Parties],
    *,
    seed: int,
    run: int,
    start: datetime,
    spread: timedelta,
    fault_rate: float,
    kinds: tuple[Fault, ...] = ALL_FAULTS,
    batch_hours: float = 6.0,
) -> list[Journey]:
    """`count` journeys started evenly over `spread` (simulated), `fault_rate` of them with one
    fault each (kinds taken in turn, so a small run still has every kind)."""
    rng = random.Random(seed)
    journeys = [
        journey(n, parties[n % len(parties)], start + spread * (n / max(count, 1)), rng, run, batch_hours)
        for n in range(count)
    ]
    faulty = sorted(rng.sample(range(count), k=min(count, round(count * fault_rate)))) if kinds else []
    for i, n in enumerate(faulty):
        # A swap borrows from a journey of the same parties (a mix-up happens within one site, one
        # courier, one manufacturer: across them the gateway refuses before it reconciles) that
        # started days earlier, so that what is borrowed is bound by then (its MRN, DIN, tracking).
        me = journeys[n]
        peers = [
            k
            for k in range(n % len(parties), count, len(parties))
            if k != n and journeys[k].start <= me.start - EARLIER
        ]
        if not peers:
            continue
        inject(me, kinds[i % len(kinds)], journeys[rng.choice(peers)], rng)
    for j in journeys:
        j.steps.sort(key=lambda step: step.at)  # stable: a step and its copy keep their order
    return journeys
