"""How a manufacturing order reaches the MES: one try each, errors translated at this edge.

AMQP   the manufacturer's durable quorum queue on the gateway's broker (declared here),
       a persistent message published with confirms; the broker unreachable, a nack or a
       return: TransientError
REST   `POST {url}/orders`, Idempotency-Key the event's id; 408, 429, 5xx or no answer:
       TransientError; another 4xx: MesRefused (given up). A 2xx body is the MES's answer
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import aio_pika
import httpx
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from gateway.sdk import GatewayError, TransientError


@dataclass(frozen=True)
class OrderMessage:
    """One manufacturing order or slot request, rendered for its manufacturer."""

    event_id: str
    event: str
    kind: str
    coi: str
    content_type: str
    body: bytes


class MesRefused(GatewayError):
    public_message = "the manufacturer's system refused the order"


class AmqpQueue:
    def __init__(self, url: str, queue: str) -> None:
        self.url, self.queue = url, queue
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None

    async def open(self) -> AbstractChannel:
        """The confirming channel, with the queue declared (idempotently)."""
        if self._channel is not None and not self._channel.is_closed:
            return self._channel
        await self.close()
        self._connection = await aio_pika.connect_robust(self.url)
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.declare_queue(self.queue, durable=True, arguments={"x-queue-type": "quorum"})
        self._channel = channel
        return channel

    async def send(self, message: OrderMessage) -> None:
        try:
            channel = await self.open()
            await channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message.event_id,
                    type=f"org.cgt.mes.{message.kind}",
                    headers={"cgt-event": message.event, "cgt-coi": message.coi},
                ),
                routing_key=self.queue,
                mandatory=True,
            )
        except Exception as exc:  # aio-pika's and the broker's many errors: try again later
            await self.close()
            raise TransientError(f"the order could not be queued ({type(exc).__name__})") from None

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing to save
                await connection.close()


@dataclass
class RestEndpoint:
    url: str
    key: str
    client: httpx.AsyncClient

    async def send(self, message: OrderMessage) -> bytes:
        """The MES's answer (its body, perhaps empty) once it took the order."""
        headers = {
            "Authorization": f"Bearer {self.key}",
            "Idempotency-Key": message.event_id,
            "Content-Type": message.content_type,
        }
        try:
            response = await self.client.post(f"{self.url}/orders", content=message.body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientError(f"the manufacturer's system did not answer ({type(exc).__name__})") from None
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise TransientError(f"the manufacturer's system answered {status}")
        if status >= 300:
            raise MesRefused(detail=f"answered {status}")
        return response.content

    async def close(self) -> None:
        await self.client.aclose()
