"""The handler of `shipment.readings_reported`: a logger's readings stored, evaluated, and what they
mean published; the readings themselves never are (the event is quiet: timeline only).

Cheap by design, whatever the batch's size: one batched insert (a reading sent again is kept
once), one read and one write of the shipment's compact state, no query for each reading, and
the order itself left untouched (no new version: readings never race the order's own updates).
A batch whose readings were all stored before (a retry) is not evaluated; one with readings
earlier than the latest evaluated (late) makes the shipment's stored readings be evaluated again
from the start, in time order; what was published is not published again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.audit import AuditEntry
from gateway.canonical.command import Command
from gateway.canonical.events import order_event, source_of
from gateway.canonical.order import PatientIdentity
from gateway.canonical.payloads import Reading, ShipmentReadings
from gateway.coldchain.excursions import ColdState, Evaluation, Sample
from gateway.coldchain.steps import SILENCE
from gateway.errors import IllegalTransition
from gateway.identity import Resolution
from gateway.service.auditing import entry
from gateway.service.effects import Context, Effect

GATEWAY_SOURCE = source_of("gateway", "cold-chain")
_EXTRA = ("ln2_level_pct", "battery_pct", "light", "shock_g", "alarm")


def _span(r: Reading) -> tuple[float | None, float | None]:
    values = [v for v in (r.temperature_c, r.min_c, r.max_c, r.mean_c) if v is not None]
    return (min(values), max(values)) if values else (None, None)


def sample(r: Reading) -> Sample:
    low, high = _span(r)
    return Sample(r.at, r.until, low, high, r.battery_pct, r.alarm)


def stored_sample(row: tuple[Any, ...]) -> Sample:
    at, until, temperature, low, high, mean, extra = row
    values = [v for v in (temperature, low, high, mean) if v is not None]
    extra = extra or {}
    return Sample(
        at,
        until,
        min(values) if values else None,
        max(values) if values else None,
        extra.get("battery_pct"),
        extra.get("alarm"),
    )


def _row(order_id: str, shipment_id: str, device_id: str, inbound_id: str, r: Reading) -> dict[str, Any]:
    extra = {k: v for k in _EXTRA if (v := getattr(r, k)) is not None}
    return {
        "order_id": order_id,
        "shipment_id": shipment_id,
        "device_id": device_id,
        "probe": r.probe or "",
        "at": r.at,
        "until": r.until,
        "temperature_c": r.temperature_c,
        "min_c": r.min_c,
        "max_c": r.max_c,
        "mean_c": r.mean_c,
        "extra": extra or None,
        "inbound_id": inbound_id,
    }


def report_readings(
    ctx: Context, command: Command, resolution: Resolution, patients: dict[str, PatientIdentity]
) -> Effect:
    payload = command.payload
    assert isinstance(payload, ShipmentReadings) and resolution.order_id is not None
    order = ctx.uow.order(resolution.order_id)
    ctx.authority.check_order(ctx.sender, order, command)
    shipment = order.shipment(payload.shipment_id)
    if shipment is None:
        raise IllegalTransition(
            "the shipment is not known to the gateway; declare it first",
            detail="readings for an undeclared shipment",
        )
    oid, sid, rows = order.order_id, shipment.shipment_id, ctx.uow.cold_chain
    inserted = rows.insert_readings(
        _row(oid, sid, payload.device_id, ctx.inbound_id, r) for r in payload.readings
    )

    derived: list[tuple[Any, AuditEntry]] = []
    chain = ctx.cold_chain
    code = shipment.temperature_class or chain.for_leg(order.product, shipment.direction)
    stored = rows.state(oid, sid) if code is not None else None
    # Every reading was stored before (a courier's retry): nothing new to evaluate.
    if code is not None and inserted() != 0:
        state = ColdState.from_json(stored)
        samples = sorted((sample(r) for r in payload.readings), key=lambda s: s.at)
        if state.last_at is not None and samples[0].at.timestamp() <= state.last_at:
            state = ColdState(published=state.published)
            samples = [stored_sample(row) for row in rows.readings_of(oid, sid)]
        class_name, limits = chain.by_code(code)
        evaluation = Evaluation(
            state,
            limits,
            class_name=class_name,
            shipment_id=sid,
            device_id=payload.device_id,
            battery_low_pct=chain.battery_low_pct,
            summary_hours=chain.summary_hours,
        )
        state = evaluation.run(samples)
        rows.save_state(oid, sid, state.to_json(), ctx.now, new=stored is None)
        # The logger's silence is counted from its latest reading, until the shipment is delivered:
        # a logger read out at the dock after delivery (as many are) restarts no clock.
        if state.last_at is not None and shipment.delivered_at is None:
            latest = datetime.fromtimestamp(state.last_at, UTC)
            rows.set_clock(oid, sid, SILENCE, latest, latest + timedelta(minutes=chain.no_data_minutes))
        for finding in evaluation.findings:
            event = order_event(finding.event, order, finding.payload, source=GATEWAY_SOURCE, time=ctx.now)
            audit = AuditEntry(
                actor="gateway:cold-chain",
                action=finding.event,
                subject=order.coi,
                detail={
                    "event_id": event.id,
                    "order_id": oid,
                    "shipment_id": sid,
                    "inbound_id": ctx.inbound_id,
                },
            )
            derived.append((event, audit))

    record = ctx.record
    event = order_event(
        command.event, order, payload, source=source_of(record.partner, record.adapter), time=ctx.now
    )
    audit = entry(
        record,
        ctx.inbound_id,
        command.event,
        order.coi,
        event_id=event.id,
        order_id=oid,
        shipment_id=sid,
        readings=len(payload.readings),
    )
    return Effect(event, audit, order, tuple(derived))
