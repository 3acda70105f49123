"""The intake's unit of work on SQL (gateway.service.ports): one transaction on the writer twin.

Database exceptions stop here: a unique key or an order version another transaction took first
comes out as ConcurrentChange, any other driver error as TransientError; the service never sees
SQLAlchemy's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.envelope import CloudEvent
from gateway.claims import Claim
from gateway.errors import ConcurrentChange, TransientError
from gateway.store import replays
from gateway.store.appends import PendingWrites
from gateway.store.coldchain import SqlColdChain
from gateway.store.db import Writer, writer_for
from gateway.store.records import InboundRecord, StoredAnswer
from gateway.store.repository import Repository
from gateway.store.tables import consumed_events

T = TypeVar("T")
# The audit chain's append (gateway.audit.append), given at construction: the audit package
# builds on the store, so the store does not import it.
AppendAudit = Callable[[Connection, Any, datetime], object]


class SqlUnitOfWork(Repository):
    """The write-behind cache of one transaction, with the batch's appends and audit entries,
    written at `finish`."""

    def __init__(self, conn: Connection, append_audit: AppendAudit) -> None:
        super().__init__(conn)
        self._appends = PendingWrites()
        self._append_audit = append_audit
        self._audit: list[tuple[Sequence[object], datetime]] = []

    @property
    def cold_chain(self) -> SqlColdChain:
        return SqlColdChain(self.conn)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """What the block changes is written whole or not at all; what earlier messages changed
        stays outside it."""
        self.write_pending()
        try:
            with self.conn.begin_nested():
                yield
                self.write_pending()
        except Exception:
            self.forget()  # what the rolled-back block wrote is not there any more
            raise

    def message(
        self, inbound_id: str, record: InboundRecord, outcome: str, reason: str | None, order_id: str | None
    ) -> None:
        self._appends.message(inbound_id, record, outcome, reason, order_id)

    def answer(self, record: InboundRecord, inbound_id: str, answer: StoredAnswer) -> None:
        self._appends.answer(record, inbound_id, answer)

    def events(self, envelopes: list[CloudEvent], order_id: str | None, inbound_id: str | None) -> None:
        self._appends.events(envelopes, order_id, inbound_id)

    def quarantined(self, **row: Any) -> None:
        self._appends.quarantined(**row)

    def audit(self, entries: Sequence[object], at: datetime) -> None:
        self._audit.append((entries, at))

    def settle_delivery(self, consumer: str, event_id: str, at: datetime) -> None:
        c = consumed_events.c
        seen = self.conn.execute(select(c.event_id).where(c.consumer == consumer, c.event_id == event_id))
        if seen.first() is None:
            self.conn.execute(
                insert(consumed_events).values(consumer=consumer, event_id=event_id, consumed_at=at)
            )

    def reopen_delivery(self, consumer: str, event_id: str) -> bool:
        c = consumed_events.c
        gone = self.conn.execute(
            delete(consumed_events).where(c.consumer == consumer, c.event_id == event_id)
        )
        return bool(gone.rowcount)

    def take(self, claim: Claim, now: datetime) -> bool:
        return replays.take(self.conn, claim, now)

    def finish(self) -> None:
        """Write what is still pending, the appends, then the audit records (which lock the
        chain's head: last, so that it is held for the shortest time)."""
        self.write_pending()
        self._appends.flush(self.conn)
        for entries, at in self._audit:
            self._append_audit(self.conn, list(entries), at)


class SqlTransactions:
    """Runs units of work, one transaction each, on the writer's threads."""

    def __init__(self, engine: AsyncEngine, append_audit: AppendAudit, *, pipelined: bool = True) -> None:
        self.writer: Writer = writer_for(engine)
        self.concurrency = self.writer.concurrency
        self._append_audit = append_audit
        # False for work that reads through SQLAlchemy Core (quarantine review): a PostgreSQL
        # pipeline answers only the prepared lookups (gateway.store.prepared).
        self._pipelined = pipelined

    async def run(self, work: Callable[[SqlUnitOfWork], T]) -> T:
        return await self.writer.run(partial(self._transaction, work))

    async def unwritable(self) -> str | None:
        return await self.writer.unwritable()

    def _transaction(self, work: Callable[[SqlUnitOfWork], T]) -> T:
        try:
            with self.writer.engine.begin() as conn:
                uow = SqlUnitOfWork(conn, self._append_audit)
                with self.writer.pipelined(conn) if self._pipelined else nullcontext():
                    result = work(uow)
                    uow.finish()
                uow.settle()
                return result
        except IntegrityError as exc:
            # A concurrent transaction bound the same identifier or moved the same order first.
            raise ConcurrentChange(detail=f"concurrent change: {type(exc).__name__}") from exc
        except DBAPIError as exc:
            raise TransientError(detail=f"database: {type(exc.orig).__name__}") from exc
