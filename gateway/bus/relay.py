"""The outbox relay: publishes committed events with publisher confirms, marks them sent after.

Rows are claimed with a lease (and SKIP LOCKED on PostgreSQL), so several relays in several
processes share the work; a relay that dies after publishing and before marking leaves its rows
to be published again when the lease runs out. Delivery is therefore at-least-once, and
consumers de-duplicate on the CloudEvent id.

Whoever publishes also keeps house (gateway.store.housekeeping): every `housekeeping_seconds` it
deletes the published rows and consumers' marks older than `keep`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Connection, bindparam, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import metrics
from gateway.bus.broker import Broker, Outgoing
from gateway.canonical.envelope import utcnow
from gateway.errors import TransientError
from gateway.store.db import writer_for
from gateway.store.housekeeping import BATCH, ROUNDS, prune_consumed, prune_login_failures, prune_outbox
from gateway.store.tables import outbox

log = logging.getLogger(__name__)

# Built once and executed with parameters, so that SQLAlchemy reuses their compiled form.
_WAITING = select(outbox.c.id).where(outbox.c.sent_at.is_(None)).limit(1)
_DUE = (
    select(outbox.c.id)
    .where(
        outbox.c.sent_at.is_(None),
        or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < bindparam("now")),
    )
    .order_by(outbox.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    update(outbox)
    .where(outbox.c.id.in_(_DUE.scalar_subquery()))
    .values(claimed_until=bindparam("until"), attempts=outbox.c.attempts + 1)
    .returning(outbox.c.id, outbox.c.event_id, outbox.c.routing_key, outbox.c.body)
)
_SENT = (
    update(outbox)
    .where(outbox.c.event_id.in_(bindparam("ids", expanding=True)))
    .values(sent_at=bindparam("at"), claimed_until=None, last_error=None)
)
_UNSENT = (
    update(outbox)
    .where(outbox.c.event_id.in_(bindparam("ids", expanding=True)))
    .values(claimed_until=None, last_error=bindparam("error"))
)


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        broker: Broker,
        *,
        batch: int = 500,
        poll_seconds: float = 0.5,
        linger_seconds: float = 0.02,
        lease_seconds: float = 30.0,
        max_backoff: float = 5.0,
        keep: timedelta | None = timedelta(days=7),
        housekeeping_seconds: float = 600.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.writer = writer_for(engine)
        self.broker = broker
        self.batch = batch
        self.poll_seconds = poll_seconds
        # After a wake-up, let a few more commits land so that one claim takes them all: fewer
        # relay transactions between the intake's on the writer, for a few ms of event latency.
        self.linger_seconds = linger_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.max_backoff = max_backoff
        self.keep, self.housekeeping_seconds = keep, housekeeping_seconds
        self._housekept = time.monotonic()  # the first pass one period after the start
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ahead: list[Outgoing] = []  # claimed with the last mark, not yet published
        self.published = 0

    @property
    def broker_up(self) -> bool:
        return self.broker.connected

    def wake(self) -> None:
        """Called after an intake commit: publish now rather than at the next poll."""
        self._wake.set()

    async def claim(self) -> list[Outgoing]:
        return await self.writer.run(self._claim)

    async def waiting(self) -> bool:
        """Whether any event waits to be published. A plain read: it takes no write lock, so a
        relay that polls often (one in a process of its own) costs the intake nothing when idle."""
        async with self.engine.connect() as conn:
            return (await conn.execute(_WAITING)).first() is not None

    async def mark(
        self, sent: list[str], unsent: list[str], error: str | None, *, claim_next: bool = False
    ) -> list[Outgoing]:
        """Mark a published batch and, when asked and it all went, claim the next in the same
        transaction."""
        return await self.writer.run(partial(self._mark, sent, unsent, error, claim_next))

    # Claims and marks are short writes on the database's writer thread, beside the intake's
    # transactions rather than against them (SQLite has one writer), and relaxed: they need not
    # reach the disk before they return, since losing one only publishes an event again.
    def _claim(self) -> list[Outgoing]:
        with self.writer.relaxed() as conn:
            return self._claim_on(conn)

    def _claim_on(self, conn: Connection) -> list[Outgoing]:
        now = self.clock()
        claimed = conn.execute(_CLAIM, {"now": now, "limit": self.batch, "until": now + self.lease}).all()
        return [Outgoing(r.event_id, r.routing_key, r.body) for r in sorted(claimed, key=lambda r: r.id)]

    def _mark(
        self, sent: list[str], unsent: list[str], error: str | None, claim_next: bool
    ) -> list[Outgoing]:
        with self.writer.relaxed() as conn:
            if sent:
                conn.execute(_SENT, {"ids": sent, "at": self.clock()})
            if unsent:
                conn.execute(_UNSENT, {"ids": unsent, "error": error})
            return self._claim_on(conn) if claim_next and not unsent else []

    async def release(self, batch: list[Outgoing]) -> None:
        """Give back claimed events this relay will not publish (it is stopping)."""
        if batch:
            await self.mark([], [item.event_id for item in batch], None)

    async def run_once(self) -> int:
        """Publish one claimed batch and mark it; returns how many the broker confirmed."""
        await self.broker.connect()  # also when idle, so that /health tells the truth
        # Woken by a commit: events wait, claim at once. Polled: look first, without the write lock.
        due = self._wake.is_set() or await self.waiting()
        batch, self._ahead = self._ahead or (await self.claim() if due else []), []
        if not batch:
            return 0
        try:
            confirmed = await self.broker.publish(batch)
        except TransientError:
            confirmed = [False] * len(batch)
        sent = [item.event_id for item, ok in zip(batch, confirmed, strict=True) if ok]
        unsent = [item.event_id for item, ok in zip(batch, confirmed, strict=True) if not ok]
        # A full batch means a backlog: claim the next with this mark. A partial one means the
        # relay has caught up: wait for the next commit (and linger) instead of claiming a few
        # events at a time in a transaction each.
        error = self.broker.last_error if unsent else None
        self._ahead = await self.mark(sent, unsent, error, claim_next=len(batch) == self.batch)
        self.published += len(sent)
        metrics.PUBLISHED.inc(len(sent))
        metrics.PUBLISH_FAILURES.inc(len(unsent))
        if unsent:
            raise TransientError("the broker did not confirm every event", detail=f"{len(unsent)} unsent")
        return len(sent)

    async def housekeep(self) -> int:
        """One housekeeping pass: what is older than `keep` deleted, BATCH rows a transaction
        (ROUNDS at most of each: a backlog goes on at the next pass). Returns how many."""
        if self.keep is None:
            return 0
        before, deleted = self.clock() - self.keep, 0
        for prune in (prune_outbox, prune_consumed, prune_login_failures):
            for _ in range(ROUNDS):
                done = await self.writer.run(partial(self._prune, prune, before))
                deleted += done
                if done < BATCH:
                    break
        return deleted

    def _prune(self, prune: Callable[[Connection, datetime], int], before: datetime) -> int:
        with self.writer.relaxed() as conn:  # a lost delete is done again at the next pass
            return prune(conn, before)

    async def _housekeeping_due(self) -> None:
        if time.monotonic() - self._housekept < self.housekeeping_seconds:
            return
        self._housekept = time.monotonic()
        try:
            deleted = await self.housekeep()
        except DBAPIError as exc:
            log.warning("outbox housekeeping: %s; at the next pass", type(exc).__name__)
            return
        if deleted:
            log.info("outbox housekeeping: %d rows older than %s deleted", deleted, self.keep)

    async def run(self) -> None:
        backoff = 0.0
        while not self._stopping:
            try:
                sent = await self.run_once()
                backoff = 0.0
            except (TransientError, DBAPIError) as exc:
                detail = exc.detail if isinstance(exc, TransientError) else type(exc).__name__
                log.warning("outbox relay: %s; retrying", detail)
                sent, backoff = 0, min(self.max_backoff, max(0.1, backoff * 2))
            except Exception:  # a defect, or a library's error nobody foresaw: the relay must not die
                log.exception("outbox relay: unexpected error; retrying")
                await self.broker.close()  # start again from a new connection
                sent, backoff = 0, min(self.max_backoff, max(0.1, backoff * 2))
            if not backoff and sent < self.batch:  # caught up: time to keep house, if it is due
                await self._housekeeping_due()
            metrics.BROKER_UP.set(1 if self.broker_up else 0)
            if backoff:
                await asyncio.sleep(backoff)  # the broker or database is down: do not spin
            elif sent < self.batch and not self._ahead:  # more already claimed: go on at once
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                    await asyncio.sleep(self.linger_seconds)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        # The flag as well as the cancel: a library that turns a CancelledError into its own
        # connection error must not keep the loop alive.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, 10)
            self._task = None
        with contextlib.suppress(DBAPIError):
            await self.release(self._ahead)
        self._ahead = []
        await self.broker.close()
        self._stopping = False
