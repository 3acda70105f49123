"""One inbound message, one transaction: idempotency -> reconcile -> apply -> audit -> outbox.

Only after `receive` returns has the message been durably stored; only then may the caller
acknowledge it. Nothing of a quarantined or rejected message is applied, and its raw bytes stay.
The transaction runs synchronously on the database's writer thread (see gateway.store.db), and
messages that arrive while one is running are committed together in the next (group commit):
each still gets its own outcome, and one message's defect or conflict never touches another's.

What a transaction does is gateway.service.transaction; what happens when it fails,
gateway.service.retries; the store is reached only through the port in gateway.service.ports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import audit
from gateway.canonical.envelope import utcnow
from gateway.canonical.ids import ExternalRef
from gateway.claims import Claim
from gateway.coldchain.classes import ColdChain, default_cold_chain
from gateway.errors import Replayed
from gateway.identity.authorise import Authority
from gateway.service.decoding import Decode, Render, failed_decode, mapping_failure
from gateway.service.mes_rules import ManufacturingRules, configured_rules
from gateway.service.ports import Transactions
from gateway.service.recent import RecentFailures
from gateway.service.retries import alone
from gateway.service.transaction import REPLAYED, Answered, Job, Rules, run_batch
from gateway.store.records import InboundRecord
from gateway.store.unit_of_work import SqlTransactions

__all__ = ["Decode", "Intake", "Render", "failed_decode", "mapping_failure"]


class Intake:
    """The service: turns decoded inbound messages into committed state and outbox rows.

    `store`: an engine (its SQL transactions are used) or any Transactions (tests give a fake)."""

    def __init__(
        self,
        store: AsyncEngine | Transactions,
        *,
        coi_facility: str,
        authority: Authority,
        on_commit: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_batch: int = 64,
        log_phi: bool = False,
        manufacturing: ManufacturingRules | None = None,
        cold_chain: ColdChain | None = None,
    ) -> None:
        self.transactions: Transactions = (
            SqlTransactions(store, audit.append) if isinstance(store, AsyncEngine) else store
        )
        self.rules = Rules(
            coi_facility,
            authority,
            clock,
            log_phi,
            manufacturing or configured_rules(),
            cold_chain or default_cold_chain(),
        )
        self.on_commit = on_commit or (lambda: None)
        self.max_batch = max_batch
        self.log_phi = log_phi
        self._queue: list[Job] = []
        self._flushing = 0  # flush tasks running; counted here, not by their done callbacks
        self._flushers: set[asyncio.Task[None]] = set()
        self.recent = RecentFailures()  # messages it could not commit, or failed on, for /health

    async def receive(
        self,
        record: InboundRecord,
        decode: Decode,
        render: Render | None = None,
        *,
        ours_if_known: tuple[ExternalRef, ...] = (),
        claim: Claim | None = None,
    ) -> Answered:
        """Process one message; returns, after its commit, its outcome and the rendered answer.
        `ours_if_known`: the message is ignored unless one of these is bound. `claim`: the signed
        attempt it came in, taken in its transaction (Replayed when it was taken before)."""
        future = asyncio.get_running_loop().create_future()
        job = Job(record, decode, render, future, ours_if_known, claim)
        self._queue.append(job)
        if self._flushing < self.transactions.concurrency:
            self._flushing += 1
            task = asyncio.create_task(self._flush())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        try:
            result = await job.future
        except Replayed:
            raise  # the sender's copy, refused: not a failure of the gateway's
        except Exception:
            self.recent.record(failed=True)
            raise
        self.recent.record(failed=result[0].error == "InternalError")
        return result

    async def take(self, claim: Claim) -> bool:
        """Take a signed attempt in a transaction of its own, for a message that stores nothing
        else (traffic that is not the gateway's): False while an earlier sighting lives."""
        now = self.rules.clock()
        return await self.transactions.run(lambda uow: uow.take(claim, now))

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                try:
                    await self._commit(batch)
                except Exception as exc:  # never leave a sender waiting forever
                    for job in batch:
                        if not job.future.done():
                            job.future.set_exception(exc)
        finally:
            # In the same step as the empty-queue check: a job queued after it starts a new flush.
            self._flushing -= 1

    async def _commit(self, batch: list[Job]) -> None:
        if len(batch) > 1:
            try:
                results = await self.transactions.run(partial(run_batch, batch=batch, rules=self.rules))
            except Exception:
                # Whatever one message of a batch met (a conflict, a transient error, a defect)
                # is that message's alone: the batch was rolled back, its messages go one by one.
                for job in batch:
                    try:
                        await self._commit([job])
                    except Exception as exc:  # this message's own error, and no other's
                        if not job.future.done():
                            job.future.set_exception(exc)
                return
        else:
            results = [await alone(self.transactions, batch[0], self.rules)]
        self.on_commit()
        for job, result in zip(batch, results, strict=True):
            if job.future.done():
                continue
            if result[0] is REPLAYED:
                job.future.set_exception(Replayed(detail=f"{job.record.partner}: replay"))
            else:
                job.future.set_result(result)
