"""The intake's unit of work: everything one transaction reads and writes, as a port.

    Transactions   run a unit of work as one transaction; commit, or raise (ConcurrentChange,
                   TransientError: database errors never cross this port untranslated)
    UnitOfWork     reads (read up front for a batch, then cached) and writes (written behind,
                   once, in their latest state) of the crosswalk, patients, orders; the batch's
                   appends (raw messages, answers, quarantine, events with their outbox rows)
                   and audit entries

The SQL implementation is gateway.store.unit_of_work; tests/unit/fakes.py holds an in-memory one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar

from gateway.audit import AuditEntry
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.ids import ExternalRef
from gateway.canonical.order import PatientIdentity, TherapyOrder
from gateway.claims import Claim
from gateway.identity import Binding
from gateway.store.records import InboundRecord, StoredAnswer

T = TypeVar("T")


class ColdChainRows(Protocol):
    """A shipment's readings, its evaluator state and its clocks, read and written at once."""

    def insert_readings(self, rows: Iterable[Mapping[str, Any]]) -> Callable[[], int | None]:
        """One batch; a reading already stored (same device, time and probe) is kept once.
        Returns how to ask, after the next read, how many were new (None: not known)."""
        ...

    def state(self, order_id: str, shipment_id: str) -> dict[str, Any] | None: ...

    def save_state(
        self, order_id: str, shipment_id: str, state: dict[str, Any], at: datetime, *, new: bool
    ) -> None: ...

    def readings_of(self, order_id: str, shipment_id: str) -> list[tuple[Any, ...]]:
        """Every stored reading, in time order: (at, until, temperature_c, min_c, max_c, mean_c, extra)."""
        ...

    def set_clock(
        self, order_id: str, shipment_id: str, clock: str, starts_at: datetime, due_at: datetime
    ) -> None: ...

    def stop_clock(self, order_id: str, shipment_id: str, clock: str, at: datetime) -> None: ...


class UnitOfWork(Protocol):
    @property
    def cold_chain(self) -> ColdChainRows: ...

    # -- reads ------------------------------------------------------------------------------
    def load_batch(
        self, keys: Iterable[tuple[str, str]], refs: Iterable[ExternalRef], *, patients: bool
    ) -> None:
        """Read up front what a batch will ask: the answers under `keys`, the crosswalk rows of
        `refs`, the orders they name and, when asked, their patients."""
        ...

    def previous_answer(self, partner: str, message_id: str) -> StoredAnswer | None: ...

    def bindings(self, refs: Iterable[ExternalRef]) -> dict[ExternalRef, Binding]:
        """Those of `refs` bound to a patient (and an order), with their binding."""
        ...

    def patients(self, patient_ids: Iterable[str]) -> dict[str, PatientIdentity]: ...

    def order(self, order_id: str) -> TherapyOrder: ...

    def orders_of_patient(self, patient_id: str) -> list[TherapyOrder]: ...

    # -- writes -----------------------------------------------------------------------------
    def bind(
        self,
        refs: Iterable[ExternalRef],
        patient_id: str,
        order_id: str | None,
        at: datetime,
        inbound_id: str | None,
    ) -> None: ...

    def insert_patient(self, patient_id: str, identity: PatientIdentity, at: datetime) -> None: ...

    def update_patient(self, patient_id: str, identity: PatientIdentity, at: datetime) -> None: ...

    def merge_patient(self, folded: str, *, into: str, identity: PatientIdentity, at: datetime) -> None:
        """Re-point every identifier and order of `folded` to `into`; keep `folded` as a tombstone."""
        ...

    def insert_order(self, order: TherapyOrder) -> None: ...

    def update_order(self, order: TherapyOrder) -> None:
        """The order's next version; the transaction fails with ConcurrentChange when the stored
        order is not the version before it."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """What the block changes is kept whole, or (when it raises) not at all."""
        ...

    # -- appends, written at the end of the transaction ---------------------------------------
    def message(
        self, inbound_id: str, record: InboundRecord, outcome: str, reason: str | None, order_id: str | None
    ) -> None:
        """Keep the raw message, with what became of it."""
        ...

    def answer(self, record: InboundRecord, inbound_id: str, answer: StoredAnswer) -> None:
        """The answer a repeat of this message id gets."""
        ...

    def events(self, envelopes: list[CloudEvent], order_id: str | None, inbound_id: str | None) -> None:
        """Events on an order's timeline, and in the outbox."""
        ...

    def quarantined(self, **row: Any) -> None: ...

    def audit(self, entries: Sequence[AuditEntry], at: datetime) -> None: ...

    def settle_delivery(self, consumer: str, event_id: str, at: datetime) -> None:
        """Record the event as settled by an outbound `consumer` (again: no error)."""
        ...

    def reopen_delivery(self, consumer: str, event_id: str) -> bool:
        """Forget that `consumer` settled the event (it is to be delivered again); False when it
        had not."""
        ...

    def take(self, claim: Claim, now: datetime) -> bool:
        """Take a signed attempt in this transaction: False while an earlier sighting lives."""
        ...


class Transactions(Protocol):
    concurrency: int  # transactions that may run at once

    async def run(self, work: Callable[[UnitOfWork], T]) -> T:
        """`work` in one transaction, committed when it returns."""
        ...

    async def unwritable(self) -> str | None:
        """Why nothing can be written now (a PHI-free reason), or None."""
        ...
