"""Hand-written fakes of the intake's ports (gateway.service.ports): the store in memory.

A transaction works on a copy of what is committed and replaces it when the work returns; a
savepoint restores its own copy when its block raises. An order updated in a transaction must
still be, at its commit, the version the update followed (else ConcurrentChange), as in SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from gateway.audit import AuditEntry
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.ids import ExternalRef, IdentifierScope
from gateway.canonical.order import PatientIdentity, TherapyOrder
from gateway.claims import Claim
from gateway.errors import ConcurrentChange, GatewayError
from gateway.identity import Binding
from gateway.store.records import InboundRecord, StoredAnswer

T = TypeVar("T")


@dataclass
class State:
    """What the fake store holds. Values are immutable: copying the containers copies the state."""

    answers: dict[tuple[str, str], StoredAnswer] = field(default_factory=dict)
    crosswalk: dict[tuple[str, str], Binding] = field(default_factory=dict)
    orders: dict[str, TherapyOrder] = field(default_factory=dict)
    patients: dict[str, PatientIdentity] = field(default_factory=dict)
    merged_into: dict[str, str] = field(default_factory=dict)
    inbound: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[CloudEvent, str | None, str | None]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    settled: set[tuple[str, str]] = field(default_factory=set)
    readings: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    cold_states: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    clocks: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    claims: dict[tuple[str, str], datetime] = field(default_factory=dict)  # replay memory

    def copy(self) -> State:
        return replace(self, **{name: type(value)(value) for name, value in vars(self).items()})


class FakeColdChain:
    """The cold chain's rows (gateway.service.ports.ColdChainRows), in the fake's state."""

    def __init__(self, state: State) -> None:
        self._held = state

    def insert_readings(self, rows: Iterable[Mapping[str, Any]]) -> Callable[[], int | None]:
        before = len(self._held.readings)
        for row in rows:
            self._held.readings.setdefault((row["device_id"], row["at"].isoformat(), row["probe"]), dict(row))
        new = len(self._held.readings) - before
        return lambda: new

    def state(self, order_id: str, shipment_id: str) -> dict[str, Any] | None:
        return self._held.cold_states.get((order_id, shipment_id))

    def save_state(
        self, order_id: str, shipment_id: str, state: dict[str, Any], at: datetime, *, new: bool
    ) -> None:
        self._held.cold_states[(order_id, shipment_id)] = state

    def readings_of(self, order_id: str, shipment_id: str) -> list[tuple[Any, ...]]:
        rows = [
            r
            for r in self._held.readings.values()
            if (r["order_id"], r["shipment_id"]) == (order_id, shipment_id)
        ]
        names = ("at", "until", "temperature_c", "min_c", "max_c", "mean_c", "extra")
        return [tuple(r[n] for n in names) for r in sorted(rows, key=lambda r: r["at"])]

    def set_clock(
        self, order_id: str, shipment_id: str, clock: str, starts_at: datetime, due_at: datetime
    ) -> None:
        self._held.clocks[(order_id, shipment_id, clock)] = {
            "starts_at": starts_at,
            "due_at": due_at,
            "warned_pct": 0,
            "stopped_at": None,
        }

    def stop_clock(self, order_id: str, shipment_id: str, clock: str, at: datetime) -> None:
        found = self._held.clocks.get((order_id, shipment_id, clock))
        if found is not None and found["stopped_at"] is None:
            found["stopped_at"] = at


class FakeUnitOfWork:
    def __init__(self, committed: State) -> None:
        self.state = committed.copy()
        self.expected: dict[str, int] = {}  # order id -> the version its first update followed
        self.loads = 0

    @property
    def cold_chain(self) -> FakeColdChain:
        return FakeColdChain(self.state)

    # -- reads --------------------------------------------------------------------------------
    def load_batch(
        self, keys: Iterable[tuple[str, str]], refs: Iterable[ExternalRef], *, patients: bool
    ) -> None:
        self.loads += 1  # everything is in memory already

    def previous_answer(self, partner: str, message_id: str) -> StoredAnswer | None:
        return self.state.answers.get((partner, message_id))

    def bindings(self, refs: Iterable[ExternalRef]) -> dict[ExternalRef, Binding]:
        found = {r: self.state.crosswalk.get((r.namespace, r.value)) for r in refs}
        return {r: b for r, b in found.items() if b is not None}

    def patients(self, patient_ids: Iterable[str]) -> dict[str, PatientIdentity]:
        return {p: self.state.patients[p] for p in patient_ids if p in self.state.patients}

    def order(self, order_id: str) -> TherapyOrder:
        return self.state.orders[order_id]

    def orders_of_patient(self, patient_id: str) -> list[TherapyOrder]:
        return sorted(
            (o for o in self.state.orders.values() if o.patient_id == patient_id), key=lambda o: o.order_id
        )

    # -- writes -------------------------------------------------------------------------------
    def bind(
        self,
        refs: Iterable[ExternalRef],
        patient_id: str,
        order_id: str | None,
        at: datetime,
        inbound_id: str | None,
    ) -> None:
        for r in refs:
            key = (r.namespace, r.value)
            if key in self.state.crosswalk:  # the crosswalk's primary key
                raise ConcurrentChange(detail=f"{r.namespace} bound twice")
            scoped = order_id if r.scope is IdentifierScope.order else None
            self.state.crosswalk[key] = Binding(patient_id, scoped)

    def insert_patient(self, patient_id: str, identity: PatientIdentity, at: datetime) -> None:
        self.state.patients[patient_id] = identity

    def update_patient(self, patient_id: str, identity: PatientIdentity, at: datetime) -> None:
        self.state.patients[patient_id] = identity

    def merge_patient(self, folded: str, *, into: str, identity: PatientIdentity, at: datetime) -> None:
        for key, binding in list(self.state.crosswalk.items()):
            if binding.patient_id == folded:
                self.state.crosswalk[key] = Binding(into, binding.order_id)
        for order in self.orders_of_patient(folded):
            update = {"patient_id": into, "patient": identity, "version": order.version + 1, "updated_at": at}
            self.update_order(order.model_copy(update=update))
        self.state.merged_into[folded] = into

    def insert_order(self, order: TherapyOrder) -> None:
        self.state.orders[order.order_id] = order

    def update_order(self, order: TherapyOrder) -> None:
        self.expected.setdefault(order.order_id, order.version - 1)
        self.state.orders[order.order_id] = order

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        before = self.state.copy()
        try:
            yield
        except Exception:
            self.state = before
            raise

    # -- appends ------------------------------------------------------------------------------
    def message(
        self, inbound_id: str, record: InboundRecord, outcome: str, reason: str | None, order_id: str | None
    ) -> None:
        self.state.inbound.append(
            {"id": inbound_id, "partner": record.partner, "message_id": record.message_id, "raw": record.raw}
            | {"outcome": outcome, "reason": reason, "order_id": order_id}
        )

    def answer(self, record: InboundRecord, inbound_id: str, answer: StoredAnswer) -> None:
        assert record.message_id is not None
        self.state.answers[(record.partner, record.message_id)] = answer

    def events(self, envelopes: list[CloudEvent], order_id: str | None, inbound_id: str | None) -> None:
        self.state.events.extend((e, order_id, inbound_id) for e in envelopes)

    def quarantined(self, **row: Any) -> None:
        self.state.quarantine.append(row)

    def audit(self, entries: Sequence[AuditEntry], at: datetime) -> None:
        self.state.audit.extend(entries)

    def settle_delivery(self, consumer: str, event_id: str, at: datetime) -> None:
        self.state.settled.add((consumer, event_id))

    def reopen_delivery(self, consumer: str, event_id: str) -> bool:
        settled = (consumer, event_id) in self.state.settled
        self.state.settled.discard((consumer, event_id))
        return settled

    def take(self, claim: Claim, now: datetime) -> bool:
        key = (claim.scope, claim.key)
        if key in self.state.claims and self.state.claims[key] >= now:
            return False
        self.state.claims[key] = claim.expires_at
        return True


class FakeTransactions:
    """Runs units of work on a State; `fail` holds errors the next runs raise instead (a database
    that is down, a concurrent transaction that wins), one a run."""

    def __init__(self, concurrency: int = 1) -> None:
        self.committed = State()
        self.concurrency = concurrency
        self.fail: list[GatewayError] = []
        self.runs = 0
        self.commits = 0

    async def run(self, work: Callable[[FakeUnitOfWork], T]) -> T:
        self.runs += 1
        if self.fail:
            raise self.fail.pop(0)
        uow = FakeUnitOfWork(self.committed)
        result = work(uow)
        for order_id, version in uow.expected.items():
            stored = self.committed.orders.get(order_id)
            if stored is not None and stored.version != version:
                raise ConcurrentChange(detail=f"an order changed concurrently: {order_id}")
        self.committed = uow.state
        self.commits += 1
        return result

    async def unwritable(self) -> str | None:
        return None
