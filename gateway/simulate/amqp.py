"""A manufacturer's AMQP channel, as the simulator speaks it: each MES message published to the
manufacturer's queue, persistent and confirmed, its outcome read on RabbitMQ's direct reply-to
(the gateway answers there before it acks; gateway/sdk/queues.py)."""

from __future__ import annotations

import asyncio

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from gateway.simulate.model import Transient, Wire

DIRECT_REPLY = "amq.rabbitmq.reply-to"


class Amqp:
    """A manufacturer's channel to its queues: each message published persistently with publisher
    confirms, its outcome awaited on the direct reply-to (consumed on the same channel)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection: AbstractConnection | None = None
        self.channel: AbstractChannel | None = None
        self.waiting: dict[str, asyncio.Future[tuple[bytes, bool]]] = {}
        self.asked = 0
        self.lock = asyncio.Lock()

    async def _channel(self) -> AbstractChannel:
        async with self.lock:
            if self.channel is not None and not self.channel.is_closed:
                return self.channel
            # The channel went with its connection (a broker restarted): the answers awaited on
            # its reply-to will not come, so those messages go again now, as a sender's would.
            for waiting in self.waiting.values():
                if not waiting.done():
                    waiting.set_exception(Transient("the broker connection was lost"))
            self.waiting.clear()
            try:
                if self.connection is None or self.connection.is_closed:
                    self.connection = await aio_pika.connect(self.url)
                channel = await self.connection.channel(publisher_confirms=True)
                replies = await channel.get_queue(DIRECT_REPLY, ensure=False)
                await replies.consume(self._answered, no_ack=True)
            except Exception as exc:  # the broker is away, or the connection died under us
                self.channel, self.connection = None, None
                raise Transient(f"broker: {type(exc).__name__}") from None
            self.channel = channel
            return channel

    async def _answered(self, message: AbstractIncomingMessage) -> None:
        waiting = self.waiting.pop(message.correlation_id or "", None)
        if waiting is not None and not waiting.done():
            waiting.set_result((message.body, (message.headers or {}).get("x-cgt-repeat") == "true"))

    async def ask(self, wire: Wire, limit: float) -> tuple[bytes, bool]:
        """The answer to `wire` (its JSON, and whether it answers a repeat)."""
        assert wire.queue is not None
        channel = await self._channel()
        self.asked += 1
        correlation = f"{wire.step.key}.{self.asked}"
        future: asyncio.Future[tuple[bytes, bool]] = asyncio.get_running_loop().create_future()
        self.waiting[correlation] = future
        headers = dict(wire.headers)
        message = aio_pika.Message(
            wire.body,
            headers={"partner": headers["partner"]},
            content_type=headers["Content-Type"],
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            reply_to=DIRECT_REPLY,
            correlation_id=correlation,
        )
        try:
            await channel.default_exchange.publish(message, routing_key=wire.queue, timeout=limit)
            return await asyncio.wait_for(future, limit)
        except TimeoutError:
            raise Transient("no answer on the reply-to in time") from None
        except (aio_pika.exceptions.AMQPError, RuntimeError, ConnectionError) as exc:
            self.channel = None  # closed under us: the next message opens another
            raise Transient(f"broker: {type(exc).__name__}") from None
        finally:
            self.waiting.pop(correlation, None)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
