"""Dead letters listed and sent back, for the command line (`cgt-gateway dead-letters`) and the
console's page alike.

Sending back is an operator's decision: audited (`delivery.redelivered`), with the outbound
consumer's settled mark for the event removed in the same transaction, so that the consumer
delivers it instead of skipping it as done; then the message is published to its queue
(confirmed) and its dead copy acknowledged (gateway.bus.dead_letters). A letter whose queue no
longer exists stays where it is, and is said to.
"""

from __future__ import annotations

from collections.abc import Iterator, Set
from contextlib import contextmanager
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.exceptions import DeliveryError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import AuditEntry
from gateway.audit.chain import append as append_audit
from gateway.bus import dead_letters
from gateway.bus.broker import BROKER_ERRORS
from gateway.bus.dead_letters import DeadLetter
from gateway.canonical.envelope import utcnow
from gateway.errors import TransientError
from gateway.service.ports import UnitOfWork
from gateway.store.unit_of_work import SqlTransactions


async def record_redelivery(
    engine: AsyncEngine,
    *,
    event_id: str,
    subject: str | None,
    queue: str,
    consumer: str | None,
    reason: str,
    operator: str,
) -> bool:
    """Before a dead letter goes back to its queue: the operator's decision audited and, when it
    came from an outbound consumer, that consumer's settled mark removed (else it would skip the
    event as done), in one transaction. Returns whether a mark was removed."""
    entry = AuditEntry(
        actor=f"operator:{operator}",
        action="delivery.redelivered",
        subject=subject or event_id,
        detail={"event_id": event_id, "queue": queue, "given_up_for": reason[:500]},
    )
    now = utcnow()

    def write(uow: UnitOfWork) -> bool:
        reopened = uow.reopen_delivery(consumer, event_id) if consumer else False
        uow.audit([entry], now)
        return reopened

    # not pipelined: the removal's row count is read at once
    return await SqlTransactions(engine, append_audit, pipelined=False).run(write)


@dataclass
class Redelivery:
    sent: list[DeadLetter] = field(default_factory=list)  # or, in a dry run, what would be
    problems: list[str] = field(default_factory=list)  # what was asked for and not sent back


@contextmanager
def _broker() -> Iterator[None]:
    """A broker that cannot be reached, or goes away, is a TransientError (said in one line by
    the command, as a page by the console)."""
    try:
        yield
    except BROKER_ERRORS as exc:
        raise TransientError("the message broker is unreachable", detail=repr(exc)) from exc


async def _open(amqp_url: str) -> tuple[AbstractConnection, AbstractChannel]:
    connection = await aio_pika.connect(amqp_url, timeout=10)
    return connection, await connection.channel(publisher_confirms=True, on_return_raises=True)


async def dead_letters_of(amqp_url: str, limit: int) -> list[DeadLetter]:
    """Up to `limit` dead letters, oldest first; reading moves none of them."""
    with _broker():
        connection, channel = await _open(amqp_url)
        try:
            return [letter for letter, _ in await dead_letters.read(channel, limit)]
        finally:
            await connection.close()  # what was read goes back, unacknowledged


async def redeliver(
    amqp_url: str,
    engine: AsyncEngine,
    *,
    event_ids: Set[str] | None,
    operator: str,
    dry_run: bool = False,
    limit: int = 1000,
) -> Redelivery:
    """Send back the dead letters of `event_ids` (None: every one of known origin) among the
    first `limit`, as `operator` decided."""
    with _broker():
        return await _redeliver(amqp_url, engine, event_ids, operator, dry_run, limit)


async def _redeliver(
    amqp_url: str, engine: AsyncEngine, event_ids: Set[str] | None, operator: str, dry_run: bool, limit: int
) -> Redelivery:
    wanted = set(event_ids or ())
    report = Redelivery()
    connection, channel = await _open(amqp_url)
    try:
        held = await dead_letters.read(channel, limit)
        chosen = [
            (letter, message)
            for letter, message in held
            if letter.queue is not None and (event_ids is None or letter.event_id in wanted)
        ]
        found = {letter.event_id for letter, _ in chosen}
        report.problems += [
            f"{e}: not among the dead letters, or of unknown origin" for e in sorted(wanted - found)
        ]
        queues = {letter.queue for letter, _ in chosen if letter.queue is not None}
        gone = {q for q in queues if not await dead_letters.queue_exists(connection, q)}
        for letter, message in chosen:
            assert letter.queue is not None
            if letter.queue in gone:  # its consumer was removed: nothing to send it back to
                report.problems.append(f"{letter.event_id}: the queue {letter.queue} no longer exists")
                continue
            if not dry_run:
                await record_redelivery(
                    engine,
                    event_id=letter.event_id or "-",
                    subject=letter.subject,
                    queue=letter.queue,
                    consumer=letter.consumer,
                    reason=letter.reason,
                    operator=operator,
                )
                try:
                    await dead_letters.send_back(channel, letter, message)
                except DeliveryError as exc:  # refused by the broker: it stays dead
                    report.problems.append(f"{letter.event_id}: not sent back ({type(exc).__name__})")
                    continue
            report.sent.append(letter)
        return report
    finally:
        await connection.close()  # what was not sent back stays dead
