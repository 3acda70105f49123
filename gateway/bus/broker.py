"""The gateway's publishing connection to RabbitMQ, with publisher confirms and a known state."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from gateway.bus.topology import declare_topology
from gateway.canonical.envelope import CONTENT_TYPE
from gateway.errors import TransientError

log = logging.getLogger(__name__)

# What a broken or absent broker raises through aio-pika; translated to TransientError here.
BROKER_ERRORS = (
    aiormq.exceptions.AMQPError,
    aio_pika.exceptions.AMQPException,
    # a channel the broker closed between the check and the publish (a RuntimeError in aiormq)
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


@dataclass(frozen=True)
class Outgoing:
    event_id: str
    routing_key: str
    body: bytes


class Broker:
    """One connection and one confirming channel; reconnects on demand, reports whether it is up."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self.last_error: str | None = None

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def connect(self) -> AbstractExchange:
        if self.connected and self._exchange is not None:
            return self._exchange
        await self.close()
        try:
            self._connection = await aio_pika.connect(self.url, timeout=self.timeout)
            self._channel = await self._connection.channel(publisher_confirms=True)
            self._exchange = await declare_topology(self._channel)
        except BROKER_ERRORS as exc:
            self.last_error = type(exc).__name__
            await self.close()
            raise TransientError("the message broker is unreachable", detail=repr(exc)) from exc
        self.last_error = None
        log.info("connected to the broker")
        return self._exchange

    async def publish(self, batch: list[Outgoing]) -> list[bool]:
        """Publish persistently and wait for every confirm; True where the broker confirmed."""
        exchange = await self.connect()

        async def one(item: Outgoing) -> bool:
            message = aio_pika.Message(
                item.body,
                message_id=item.event_id,
                content_type=CONTENT_TYPE,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            try:
                await exchange.publish(message, routing_key=item.routing_key, timeout=self.timeout)
            except BROKER_ERRORS as exc:
                self.last_error = type(exc).__name__
                return False
            return True

        results = await asyncio.gather(*(one(item) for item in batch))
        if not all(results) and not self.connected:
            await self.close()
        return list(results)

    async def close(self) -> None:
        connection, self._connection, self._channel, self._exchange = (
            self._connection,
            None,
            None,
            None,
        )
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except BROKER_ERRORS:
                log.debug("broker connection was already broken")
