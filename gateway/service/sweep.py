"""The clocks' sweep: every running clock (gateway.service.clocks) that passed 75 %, 90 % or its
deadline since it last warned is published as `shipment.delayed` (the clock, its deadline, the
percentage elapsed and the time left, negative once past), audited, from the outbox; a logger's
silence past its deadline as `shipment.logger_fault` (`no_data`).

The clocks live in the database, so a restart loses none: the first sweep after it warns of what
passed meanwhile (the highest step only). Several replicas sweep the same table: a warning is
claimed by `UPDATE ... WHERE warned_pct < step` in the transaction that publishes it, and only the
replica whose update touched the row publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update

from gateway.audit import AuditEntry
from gateway.canonical.events import order_event, source_of
from gateway.canonical.order import ShipmentDirection, TherapyOrder
from gateway.canonical.payloads import LoggerFault, Payload, ShipmentDelayed
from gateway.coldchain.steps import SILENCE, STEPS, next_warning, steps_of
from gateway.errors import TransientError
from gateway.store import tables as t
from gateway.store.prepared import Prepared
from gateway.store.unit_of_work import SqlTransactions, SqlUnitOfWork

log = logging.getLogger(__name__)
SOURCE = source_of("gateway", "clocks")
_d = t.deadlines
# The clocks whose next warning is due (its index: a sweep reads these, not every running clock).
_DUE = Prepared(
    select(_d.c.id, _d.c.order_id, _d.c.shipment_id, _d.c.clock, _d.c.starts_at, _d.c.due_at, _d.c.warned_pct)
    .where(_d.c.next_at <= bindparam("now"), _d.c.stopped_at.is_(None))
    .order_by(_d.c.id)
)
_CLAIM = Prepared(
    update(_d)
    .where(_d.c.id == bindparam("cid"), _d.c.warned_pct < bindparam("step"), _d.c.stopped_at.is_(None))
    .values(warned_pct=bindparam("step"), next_at=bindparam("next_at"))
)
_RESCHEDULE = Prepared(update(_d).where(_d.c.id == bindparam("cid")).values(next_at=bindparam("next_at")))


def step_reached(starts_at: datetime, due_at: datetime, now: datetime, warned: int) -> tuple[int, int] | None:
    """(the highest warning step reached and not yet given, the percentage elapsed), or None."""
    total = (due_at - starts_at).total_seconds()
    elapsed_pct = 100.0 if total <= 0 else (now - starts_at).total_seconds() / total * 100
    step = max((s for s in STEPS if elapsed_pct >= s), default=0)
    return (step, int(elapsed_pct)) if step > warned else None


def _shipment_named(order: TherapyOrder, shipment_id: str) -> str:
    """The shipment a clock is about; the order-wide viability clock names the inbound leg."""
    if shipment_id:
        return shipment_id
    inbound = next((s for s in order.shipments if s.direction is ShipmentDirection.to_manufacturer), None)
    return inbound.shipment_id if inbound else order.coi


def _finding(
    order: TherapyOrder,
    shipment_id: str,
    clock: str,
    span: tuple[datetime, datetime],
    now: datetime,
    pct: int,
) -> tuple[str, Payload]:
    """What a clock at a step means: a delay warning, or (a logger's silence) a logger fault."""
    named, (starts_at, due_at) = _shipment_named(order, shipment_id), span
    if clock == SILENCE:
        shipment = order.shipment(shipment_id)
        minutes = int((now - starts_at).total_seconds() // 60)
        return "shipment.logger_fault", LoggerFault(
            occurred_at=now,
            shipment_id=named,
            device_id=(shipment.logger_id if shipment else None) or named,
            fault="no_data",
            detail=f"no reading for {minutes} minutes",
        )
    delayed = ShipmentDelayed(
        occurred_at=now,
        shipment_id=named,
        clock=clock,
        deadline=due_at,
        elapsed_pct=max(0, pct),
        time_left_s=int((due_at - now).total_seconds()),
    )
    return "shipment.delayed", delayed


def sweep_once(uow: SqlUnitOfWork, now: datetime) -> int:
    """One sweep on one transaction; the number of warnings published."""
    warned = 0
    for cid, order_id, shipment_id, clock, starts_at, due_at, was in _DUE.rows(uow.conn, {"now": now}):
        reached = step_reached(starts_at, due_at, now, was)
        if reached is None or reached[0] not in steps_of(clock):  # a logger's silence: at 100 only
            _RESCHEDULE.execute(
                uow.conn, {"cid": cid, "next_at": next_warning(clock, starts_at, due_at, was)}
            )
            continue
        step, pct = reached
        then = {"cid": cid, "step": step, "next_at": next_warning(clock, starts_at, due_at, step)}
        if _CLAIM.execute(uow.conn, then).rowcount != 1:
            continue  # another replica warned first
        order = uow.order(order_id)
        name, payload = _finding(order, shipment_id, clock, (starts_at, due_at), now, pct)
        event = order_event(name, order, payload, source=SOURCE, time=now)
        uow.events([event], order_id, None)
        detail = {"event_id": event.id, "order_id": order_id, "clock": clock, "step": step}
        uow.audit(
            [AuditEntry(actor="gateway:clocks", action="shipment.delayed", subject=order.coi, detail=detail)],
            now,
        )
        warned += 1
    return warned


@dataclass
class ClockSweeper:
    """The serving process's task: sweep every `interval_s`."""

    transactions: SqlTransactions
    interval_s: float
    clock: Callable[[], datetime]
    on_commit: Callable[[], None]
    _task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        warned = await self.transactions.run(lambda uow: sweep_once(uow, self.clock()))
        if warned:
            self.on_commit()
        return warned

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="clock-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except TransientError as exc:  # the database is away: the next sweep catches up
                log.warning("clock sweep failed: %s", exc.detail)
            await asyncio.sleep(self.interval_s)
