"""Consume canonical events from a quorum queue: handle, commit, then ack; de-duplicate on the id.

What the handler raises decides the message's fate (as in FastStream):
    nothing          -> committed, acked
    TransientError   -> rolled back, nacked with requeue; on its last allowed delivery (the quorum
                        queue's `x-delivery-count` reaching the limit) rejected to `cgt.dlx` instead
    anything else    -> rolled back, rejected without requeue: dead-lettered to `cgt.dlx`
Before a message is dead-lettered, `on_dead_letter` (if given) is awaited, so an outbound adapter
can raise its alert: nothing is given up silently. A message whose CloudEvent id this consumer
has already committed is acked and not handled again.

Outbound adapters talk to partners in `deliver(event)`, awaited with no transaction open (an HTTP
call or an MLLP exchange must not hold the database's write lock); `handler(event, conn)` then
runs in the short transaction that records the event as consumed. A crash between the two
delivers again: partners see at-least-once, like every consumer of the bus.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.bus.topology import declare_consumer_queue
from gateway.canonical.envelope import CloudEvent, utcnow
from gateway.errors import GatewayError, TransientError
from gateway.store.tables import consumed_events

log = logging.getLogger(__name__)

Handler = Callable[[CloudEvent, AsyncConnection], Awaitable[None]]
Deliver = Callable[[CloudEvent], Awaitable[None]]
DeadLetterHook = Callable[[CloudEvent, int, str], Awaitable[None]]  # event, deliveries, reason


class _AlreadyConsumed(Exception):
    pass


class EventConsumer:
    def __init__(
        self,
        engine: AsyncEngine,
        amqp_url: str,
        *,
        name: str,
        patterns: Sequence[str],
        handler: Handler | None = None,
        deliver: Deliver | None = None,
        delivery_limit: int = 5,
        prefetch: int = 50,
        on_dead_letter: DeadLetterHook | None = None,
    ) -> None:
        self.engine = engine
        self.amqp_url = amqp_url
        self.name = name
        self.patterns = patterns
        self.handler = handler
        self.deliver = deliver
        self.delivery_limit = delivery_limit
        self.prefetch = prefetch
        self.on_dead_letter = on_dead_letter
        self._connection: AbstractConnection | None = None
        self.handled = 0
        self.duplicates = 0

    @property
    def queue_name(self) -> str:
        return f"cgt.consumer.{self.name}"

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.amqp_url)
        channel = await self._connection.channel()
        queue = await declare_consumer_queue(channel, self.queue_name, self.patterns, self.delivery_limit)
        await channel.set_qos(prefetch_count=self.prefetch)  # after: declaring may reopen the channel
        await queue.consume(self._on_message)

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = CloudEvent.from_json(message.body)
        except ValidationError:
            log.warning("consumer %s: not a CloudEvent, dead-lettered", self.name)
            await message.reject(requeue=False)
            return
        try:
            if self.deliver is not None:
                if await self._consumed(event.id):
                    raise _AlreadyConsumed
                await self.deliver(event)
            async with self.engine.begin() as conn:
                try:
                    await conn.execute(
                        insert(consumed_events).values(
                            consumer=self.name, event_id=event.id, consumed_at=utcnow()
                        )
                    )
                except IntegrityError:
                    raise _AlreadyConsumed from None
                if self.handler is not None:
                    await self.handler(event, conn)
        except _AlreadyConsumed:
            self.duplicates += 1
            await message.ack()
        except (TransientError, DBAPIError) as exc:
            previous = (message.headers or {}).get("x-delivery-count", 0)
            deliveries = (previous if isinstance(previous, int) else 0) + 1
            if deliveries < self.delivery_limit:
                log.warning("consumer %s: transient failure on %s; requeued", self.name, event.id)
                await message.nack(requeue=True)
            else:
                await self._dead_letter(message, event, deliveries, exc)
        except Exception as exc:  # a permanent failure: dead-letter it, with an alert
            log.exception("consumer %s: %s failed", self.name, event.id)
            await self._dead_letter(message, event, 1, exc)
        else:
            self.handled += 1
            await message.ack()

    async def _consumed(self, event_id: str) -> bool:
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(consumed_events.c.event_id).where(
                    consumed_events.c.consumer == self.name, consumed_events.c.event_id == event_id
                )
            )
            return found.first() is not None

    async def _dead_letter(
        self, message: AbstractIncomingMessage, event: CloudEvent, deliveries: int, exc: Exception
    ) -> None:
        reason = exc.public_message if isinstance(exc, GatewayError) else type(exc).__name__
        log.warning("consumer %s: %s dead-lettered after %d deliveries", self.name, event.id, deliveries)
        if self.on_dead_letter is not None:
            try:
                await self.on_dead_letter(event, deliveries, reason)
            except (TransientError, DBAPIError):
                # The alert could not be written: keep the message on the queue rather than lose both.
                await message.nack(requeue=True)
                return
        await message.reject(requeue=False)
