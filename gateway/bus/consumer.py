"""Consume canonical events from a quorum queue: handle, commit, then ack; de-duplicate on the id.

What the handler raises decides the message's fate (as in FastStream):
    nothing          -> committed, acked
    TransientError   -> rolled back, nacked with requeue (the queue's delivery limit dead-letters it)
    anything else    -> rolled back, rejected without requeue: dead-lettered to `cgt.dlx`
A message whose CloudEvent id this consumer has already committed is acked and not handled again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.bus.topology import declare_consumer_queue
from gateway.canonical.envelope import CloudEvent, utcnow
from gateway.errors import TransientError
from gateway.store.tables import consumed_events

log = logging.getLogger(__name__)

Handler = Callable[[CloudEvent, AsyncConnection], Awaitable[None]]


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
        handler: Handler,
        delivery_limit: int = 5,
        prefetch: int = 50,
    ) -> None:
        self.engine = engine
        self.amqp_url = amqp_url
        self.name = name
        self.patterns = patterns
        self.handler = handler
        self.delivery_limit = delivery_limit
        self.prefetch = prefetch
        self._connection: AbstractConnection | None = None
        self.handled = 0
        self.duplicates = 0

    @property
    def queue_name(self) -> str:
        return f"cgt.consumer.{self.name}"

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.amqp_url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        queue = await declare_consumer_queue(channel, self.queue_name, self.patterns, self.delivery_limit)
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
            async with self.engine.begin() as conn:
                try:
                    await conn.execute(
                        insert(consumed_events).values(
                            consumer=self.name, event_id=event.id, consumed_at=utcnow()
                        )
                    )
                except IntegrityError:
                    raise _AlreadyConsumed from None
                await self.handler(event, conn)
        except _AlreadyConsumed:
            self.duplicates += 1
            await message.ack()
        except (TransientError, DBAPIError):
            log.warning("consumer %s: transient failure on %s; requeued", self.name, event.id)
            await message.nack(requeue=True)
        except Exception:
            log.exception("consumer %s: %s failed; dead-lettered", self.name, event.id)
            await message.reject(requeue=False)
        else:
            self.handled += 1
            await message.ack()
