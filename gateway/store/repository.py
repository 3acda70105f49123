"""The intake transaction's write-behind cache (synchronous, on the writer twin): what a batch
reads, read up front; what it changes, written once, in its latest state.

The statements are built once at import and run as `Prepared` statements: compiled once for each
dialect, executed on the driver's cursor (see gateway.store.prepared). The record types, the
appends and the read side live beside it (records, appends, reads); they are re-exported here for
existing imports.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from gateway.canonical.ids import ExternalRef, IdentifierScope
from gateway.canonical.order import PatientIdentity, TherapyOrder
from gateway.errors import ConcurrentChange
from gateway.identity import Binding
from gateway.store import statements as sql
from gateway.store.appends import PendingWrites
from gateway.store.lookups import CHUNK, lookup, size_for
from gateway.store.prepared import Prepared
from gateway.store.reads import count_open_quarantine, open_quarantine, order_by_coi, outbox_backlog, timeline
from gateway.store.records import InboundRecord, StoredAnswer

__all__ = [
    "InboundRecord",
    "PendingWrites",
    "Repository",
    "StoredAnswer",
    "count_open_quarantine",
    "open_quarantine",
    "order_by_coi",
    "outbox_backlog",
    "timeline",
]


class Repository:
    """Everything the intake transaction reads and writes, on one synchronous connection.

    What a batch will read is read up front (`load_batch`), one query per kind, sent together: on
    PostgreSQL that is one round trip for the batch rather than a few per message. What the
    transaction writes updates the same cache, so a message sees what an earlier one in the batch
    did; a key the cache has not seen is read as before.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._updated: list[tuple[Any, list[str]]] = []  # (cursor, order ids) of order updates
        self._answers: dict[tuple[str, str], StoredAnswer | None] = {}
        self._crosswalk: dict[tuple[str, str], Binding | None] = {}
        self._orders: dict[str, TherapyOrder] = {}
        self._patients: dict[str, PatientIdentity | None] = {}
        # Written at `write_pending`, one statement a table, in an order the foreign keys allow.
        self._new_patients: dict[str, dict[str, Any]] = {}
        self._new_orders: dict[str, TherapyOrder] = {}
        self._new_bindings: list[dict[str, Any]] = []
        self._changed_patients: dict[str, dict[str, Any]] = {}
        self._changed_orders: dict[str, tuple[int, TherapyOrder]] = {}  # (version stored, latest)

    def write_pending(self) -> None:
        """Write what the messages so far changed: new patients, orders and bindings, then each
        changed order and patient once, in its latest state."""
        sql.INSERT_PATIENT.execute_many(self.conn, self._new_patients.values())
        sql.INSERT_ORDER.execute_many(self.conn, (_order_row(o) for o in self._new_orders.values()))
        sql.INSERT_BINDING.execute_many(self.conn, self._new_bindings)
        sql.UPDATE_PATIENT.execute_many(self.conn, self._changed_patients.values())
        if self._changed_orders:
            rows = [{**_order_row(o), "expected": v} for v, o in self._changed_orders.values()]
            # Its row count is known once the statement has run: at once on SQLite, after the
            # pipeline's next sync on PostgreSQL. `settle` checks it before the commit.
            self._updated.append((sql.UPDATE_ORDER.execute_many(self.conn, rows), list(self._changed_orders)))
        self._drop_pending()

    def _drop_pending(self) -> None:
        self._new_patients.clear()
        self._new_orders.clear()
        self._new_bindings.clear()
        self._changed_patients.clear()
        self._changed_orders.clear()

    def settle(self) -> None:
        """Check, once every statement has run, that each order update found the version it
        expected; a concurrent change fails the transaction with ConcurrentChange (and the intake
        runs it again)."""
        for cursor, order_ids in self._updated:
            if cursor.rowcount != len(order_ids):
                raise ConcurrentChange(detail=f"an order changed concurrently: {', '.join(order_ids)}")
        self._updated.clear()

    def forget(self) -> None:
        """Drop what was read, and what was changed but not yet written (after a rollback to a
        savepoint)."""
        self._crosswalk.clear()
        self._orders.clear()
        self._patients.clear()
        self._drop_pending()

    def _send(self, kind: str, keys: list[Any]) -> list[tuple[Prepared, Any]]:
        sent = []
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            size = size_for(len(chunk))
            chunk = chunk + [chunk[-1]] * (size - len(chunk))
            values: dict[str, Any] = {}
            for i, key in enumerate(chunk):
                if isinstance(key, tuple):
                    values[f"a{i}"], values[f"b{i}"] = key
                else:
                    values[f"a{i}"] = key
            query = lookup(kind, size)
            sent.append((query, query.send(self.conn, values)))
        return sent

    def _fetch(self, sent: list[tuple[Prepared, Any]]) -> list[tuple[Any, ...]]:
        return [row for query, cursor in sent for row in query.fetch(self.conn, cursor)]

    def _read(self, kind: str, keys: list[Any]) -> list[tuple[Any, ...]]:
        return self._fetch(self._send(kind, keys)) if keys else []

    # -- what a batch reads, read up front ----------------------------------------------------
    def load_batch(
        self, keys: Iterable[tuple[str, str]], refs: Iterable[ExternalRef], *, patients: bool
    ) -> None:
        """Everything a batch will read, sent together (one round trip in a PostgreSQL pipeline):
        the answers of `keys`, the crosswalk rows of `refs`, the orders they name (locked) and,
        when asked, their patients."""
        wanted_keys = [k for k in dict.fromkeys(keys) if k not in self._answers]
        wanted = [k for k in dict.fromkeys((r.namespace, r.value) for r in refs) if k not in self._crosswalk]
        answers = self._send("answers", wanted_keys) if wanted_keys else []
        crosswalk = self._send("crosswalk", wanted) if wanted else []
        orders = self._send("orders named", wanted) if wanted else []
        identities = self._send("patients named", wanted) if wanted and patients else []
        self._answers.update(dict.fromkeys(wanted_keys))
        for partner, message_id, answer, rendered, content_hash in self._fetch(answers):
            self._answers[(partner, message_id)] = StoredAnswer(dict(answer), rendered, content_hash)
        self._crosswalk.update(dict.fromkeys(wanted))
        for namespace, value, patient_id, order_id in self._fetch(crosswalk):
            self._crosswalk[(namespace, value)] = Binding(patient_id, order_id)
        for order_id, document in self._fetch(orders):
            if order_id not in self._orders:
                self._orders[order_id] = TherapyOrder.model_validate(document)
        for patient_id, identity in self._fetch(identities):
            if patient_id not in self._patients:
                self._patients[patient_id] = PatientIdentity.model_validate(identity)

    def _load_orders(self, order_ids: Iterable[str]) -> None:
        wanted = [o for o in dict.fromkeys(order_ids) if o not in self._orders]
        for order_id, document in self._read("orders", sorted(wanted)) if wanted else ():
            self._orders[order_id] = TherapyOrder.model_validate(document)

    def _load_patients(self, patient_ids: Iterable[str]) -> None:
        wanted = [p for p in dict.fromkeys(patient_ids) if p not in self._patients]
        if not wanted:
            return
        self._patients.update(dict.fromkeys(wanted))
        for patient_id, identity in self._read("patients", wanted):
            self._patients[patient_id] = PatientIdentity.model_validate(identity)

    # -- idempotency and raw messages ------------------------------------------------------
    def previous_answer(self, partner: str, message_id: str) -> StoredAnswer | None:
        self.load_batch([(partner, message_id)], [], patients=False)
        return self._answers[(partner, message_id)]

    # -- crosswalk ------------------------------------------------------------------------
    def bindings(self, refs: Iterable[ExternalRef]) -> dict[ExternalRef, Binding]:
        refs = list(refs)
        self.load_batch([], refs, patients=False)
        found = {r: self._crosswalk[(r.namespace, r.value)] for r in refs}
        return {r: b for r, b in found.items() if b is not None}

    def bind(
        self,
        refs: Iterable[ExternalRef],
        patient_id: str,
        order_id: str | None,
        at: datetime,
        inbound_id: str | None,
    ) -> None:
        for r in refs:
            scoped = order_id if r.scope is IdentifierScope.order else None
            self._crosswalk[(r.namespace, r.value)] = Binding(patient_id, scoped)
            self._new_bindings.append(
                {
                    "namespace": r.namespace,
                    "value": r.value,
                    "patient_id": patient_id,
                    "order_id": scoped,
                    "bound_at": at,
                    "inbound_id": inbound_id,
                }
            )

    # -- patients and orders ---------------------------------------------------------------
    def patients(self, patient_ids: Iterable[str]) -> dict[str, PatientIdentity]:
        ids = list(patient_ids)
        self._load_patients(ids)
        return {p: identity for p in ids if (identity := self._patients[p]) is not None}

    def insert_patient(self, patient_id: str, identity: PatientIdentity, at: datetime) -> None:
        self._patients[patient_id] = identity
        self._new_patients[patient_id] = {
            "pid": patient_id,
            "identity": identity.model_dump(mode="json"),
            "at": at,
        }

    def update_patient(self, patient_id: str, identity: PatientIdentity, at: datetime) -> None:
        self._patients[patient_id] = identity
        row = {"pid": patient_id, "identity": identity.model_dump(mode="json"), "at": at}
        (self._new_patients if patient_id in self._new_patients else self._changed_patients)[patient_id] = row

    def merge_patient(self, folded: str, *, into: str, identity: PatientIdentity, at: datetime) -> None:
        """Re-point every identifier and order of `folded` to `into`; keep `folded` as a tombstone."""
        orders = self.orders_of_patient(folded)  # before the crosswalk they are found by moves
        sql.REPOINT_CROSSWALK.execute(self.conn, {"old": folded, "new": into})
        for key, binding in self._crosswalk.items():
            if binding is not None and binding.patient_id == folded:
                self._crosswalk[key] = Binding(into, binding.order_id)
        for order in orders:
            self.update_order(
                order.model_copy(
                    update={
                        "patient_id": into,
                        "patient": identity,
                        "version": order.version + 1,
                        "updated_at": at,
                    }
                )
            )
        sql.TOMBSTONE.execute(self.conn, {"old": folded, "new": into, "at": at})
        self._patients.pop(folded, None)

    def order(self, order_id: str) -> TherapyOrder:
        self._load_orders([order_id])
        if order_id not in self._orders:
            raise LookupError(f"order {order_id} is bound in the crosswalk but not stored")
        return self._orders[order_id]

    def orders_of_patient(self, patient_id: str) -> list[TherapyOrder]:
        self.write_pending()  # found by patient, in the database
        rows = sql.ORDERS_OF_PATIENT.rows(self.conn, {"pid": patient_id})
        orders = [TherapyOrder.model_validate(document) for (document,) in rows]
        return [self._orders.get(o.order_id, o) for o in orders]

    def insert_order(self, order: TherapyOrder) -> None:
        self._orders[order.order_id] = self._new_orders[order.order_id] = order

    def update_order(self, order: TherapyOrder) -> None:
        """Record the order's new version; written once, in its latest state, by `write_pending`."""
        self._orders[order.order_id] = order
        if order.order_id in self._new_orders:
            self._new_orders[order.order_id] = order
            return
        stored, _ = self._changed_orders.get(order.order_id, (order.version - 1, order))
        self._changed_orders[order.order_id] = (stored, order)


def _order_row(order: TherapyOrder) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "coi": order.coi,
        "patient_id": order.patient_id,
        "status": order.status.value,
        "version": order.version,
        "document": order.model_dump(mode="json"),
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }
