"""Faults injected into a journey: each an extra message (the clean journey still runs to its
end) with what the gateway must make of it."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from gateway.simulate.identities import Identities
from gateway.simulate.model import Boundary, Expect, Fault, Journey, M, Readings, Step


def inject(j: Journey, fault: Fault, other: Journey, rng: random.Random) -> None:
    """Add `fault` to journey `j` (`other`: a journey whose identifiers a swap borrows). Each
    injected message is an extra one: the clean journey still runs to the end."""
    steps = j.steps
    tag = f"{len(j.faults):02d}"

    def at(event: str, leg: str | None = None) -> Step:
        return next(s for s in steps if s.event == event and (leg is None or s.data.get("leg") == leg))

    def extra(base: Step, ids: Identities, expect: Expect, after: bool = True, **data: Any) -> None:
        index = steps.index(base)
        step = replace(
            base,
            ids=ids,
            data={**base.data, **data},
            fault=fault,
            expect=expect,
            key=f"{base.key}-F{tag}",
            at=base.at + (M if after else -M),
        )
        steps.insert(index + (1 if after else 0), step)

    if fault is Fault.duplicate:
        base = rng.choice(
            [s for s in steps if s.boundary is not Boundary.site_hl7 and s.event != "shipment.declared"]
        )
        index = steps.index(base)
        again = replace(base, fault=fault, expect=Expect.replayed, at=base.at + M, said_at=base.stamp)
        steps.insert(index + 1, again)  # the very same message: the same bytes
    elif fault is Fault.out_of_order:
        base = at("manufacturing.started")
        early = replace(
            base,
            fault=fault,
            expect=Expect.refused,
            at=at("shipment.picked_up", "inbound").at + M,
            said_at=base.at,
        )
        steps.insert(steps.index(at("shipment.picked_up", "inbound")) + 1, early)
    elif fault is Fault.swap_din:
        base = at("manufacturing.material_received")
        extra(
            base,
            replace(j.ids, din=other.ids.din, din_check=other.ids.din_check),
            Expect.quarantined,
            after=False,
        )
    elif fault is Fault.swap_mrn:
        base = at("collection.scheduled")
        extra(base, replace(j.ids, mrn=other.ids.mrn), Expect.quarantined)
    elif fault is Fault.swap_tracking:
        base = at("shipment.delivered", "inbound")
        extra(
            base, replace(j.ids, inbound_tracking=other.ids.inbound_tracking), Expect.quarantined, after=False
        )
    elif fault is Fault.malformed:
        base = rng.choice([s for s in steps[1:] if s.boundary is not Boundary.site_hl7])
        extra(base, j.ids, Expect.refused)
        steps[steps.index(base) + 1].event = "malformed"
    elif fault is Fault.excursion:
        first = next(s for s in steps if s.event == "shipment.readings_reported")
        readings: Readings = first.data["readings"]
        hot = readings.with_celsius([round(rng.uniform(11.0, 14.0), 2) for _ in range(len(readings))])
        first.data = {**first.data, "readings": hot}
        first.fault = fault  # applied as usual; the gateway must publish an excursion
    j.faults.append(fault)
