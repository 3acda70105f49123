"""The outbound contract and the one runner that carries it out (DESIGN §3).

An adapter says what to send and how; the runner does the rest, the same for every destination:

    render(event, view, profile) -> request | None   pure: None when the destination hears nothing
    deliver(request)                                  the transport; raises TransientError to retry,
                                                      any other GatewayError to give up at once

The runner subscribes a durable quorum queue (`cgt.consumer.<name>`) to the destination's event
patterns, fetches the destination's disclosure-filtered view of the order (`Orders.view`: only
orders it is a party to, only its own and the shared identifiers), renders, delivers, and settles
the event in the `Deliveries` ledger before acking it. What happens next is the exception's:

    TransientError    tried `Retry.tries` times in this delivery with backoff, then requeued
                      after a backoff; on the `Retry.deliveries`-th delivery given up
    anything else     given up at once
    given up          `delivery.failed` raised (and the event settled) in one transaction, then
                      the message rejected to `cgt.dlx`: nothing is given up silently

Order: one message in flight a destination, and an event waits (is requeued) while an earlier
event of the same order for this destination, committed before it, is not settled: a failing
delivery holds the later ones of its order back until it succeeds or is given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from pydantic import ValidationError

from gateway.bus.topology import declare_consumer_queue
from gateway.canonical.envelope import CloudEvent
from gateway.errors import GatewayError, TransientError
from gateway.partners import Partner
from gateway.sdk.ports import Deliveries, Orders, OrderView
from gateway.settings import Settings

log = logging.getLogger(__name__)

P = TypeVar("P")  # the destination's profile
R = TypeVar("R")  # what render makes and deliver sends
P_in = TypeVar("P_in", contravariant=True)
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Retry:
    """How hard to try: `tries` within one delivery, up to `deliveries` deliveries by the queue,
    `backoff` seconds before the second attempt, doubling, at most `max_backoff`."""

    tries: int = 1
    deliveries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`-th failed attempt (counted across deliveries)."""
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))


async def retrying(
    retry: Retry, action: Callable[[], Awaitable[T]], *, after: int = 0, sleep: Sleep = asyncio.sleep
) -> T:
    """`action` until it succeeds, at most `retry.tries` times, sleeping `retry.delay` between
    tries; the last TransientError is raised. `after`: attempts made before (earlier deliveries)."""
    for n in range(1, retry.tries + 1):
        try:
            return await action()
        except TransientError as exc:
            log.info("attempt %d of %d failed (%s)", n, retry.tries, exc.public_message)
            if n == retry.tries:
                raise
            await sleep(retry.delay(after + n))
    raise AssertionError("unreachable: tries >= 1")


class Outbound(Protocol[P_in, R]):
    """An adapter's outbound side: what to send for an event, and how to send it."""

    def render(self, event: CloudEvent, view: OrderView, profile: P_in) -> R | None: ...

    async def deliver(self, request: R) -> None: ...


@dataclass(frozen=True)
class Destination(Generic[P]):
    """Where events go: the consumer's `name` (its queue is `cgt.consumer.<name>`, its ledger
    entries carry the name), the partner whose view it gets, the adapter named in alerts."""

    name: str
    partner: Partner
    adapter: str
    profile: P
    events: Sequence[str]
    retry: Retry = Retry()


class OutboundRuntime(Protocol):
    """What the runner needs of the running gateway (a gateway.sdk Runtime has it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def orders(self) -> Orders: ...

    @property
    def deliveries(self) -> Deliveries: ...


class _Waiting(TransientError):
    public_message = "an earlier event of the order is not delivered yet"


class OutboundRunner(Generic[P, R]):
    """Consumes one destination's events and delivers them through `outbound`."""

    def __init__(
        self,
        runtime: OutboundRuntime,
        destination: Destination[P],
        outbound: Outbound[P, R],
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.runtime, self.destination, self.outbound, self.sleep = runtime, destination, outbound, sleep
        self.consuming = asyncio.Event()
        self.handled = 0  # events settled: delivered, or not this destination's
        self.delivered = 0
        self.duplicates = 0
        self.given_up = 0
        self._connection: AbstractConnection | None = None
        self._starting: asyncio.Task[None] | None = None

    @property
    def queue_name(self) -> str:
        return f"cgt.consumer.{self.destination.name}"

    async def open(self) -> None:
        """Bind the queue and consume; raises TransientError when the broker cannot be reached."""
        try:
            self._connection = await aio_pika.connect_robust(self.runtime.settings.amqp_url)
            channel = await self._connection.channel()
            d = self.destination
            queue = await declare_consumer_queue(channel, self.queue_name, d.events, d.retry.deliveries)
            # One in flight: the events of an order leave in the order they were committed.
            await channel.set_qos(prefetch_count=1)  # after declaring, which may reopen the channel
            await queue.consume(self._on_message)
        except Exception as exc:  # aio-pika's and the broker's many errors: not reachable yet
            await self.close()
            raise TransientError("the message broker is unreachable", detail=repr(exc)) from exc
        self.consuming.set()
        log.info("outbound %s consuming %s", self.destination.name, ", ".join(self.destination.events))

    def start(self) -> None:
        """Consume in the background: a broker that is down at start-up delays, never blocks, the gateway."""
        self._starting = asyncio.create_task(
            self._open_eventually(), name=f"outbound-{self.destination.name}"
        )

    async def _open_eventually(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.open()
                return
            except TransientError as exc:
                log.warning("outbound %s: cannot consume yet (%s)", self.destination.name, exc.detail)
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing to save
                await connection.close()

    async def stop(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        await self.close()
        self.consuming.clear()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = CloudEvent.from_json(message.body)
        except ValidationError:
            log.warning("outbound %s: not a CloudEvent, dead-lettered", self.destination.name)
            await message.reject(requeue=False)
            return
        previous = (message.headers or {}).get("x-delivery-count", 0)
        delivery = (previous if isinstance(previous, int) else 0) + 1
        retry = self.destination.retry
        try:
            await self._handle(event, delivery)
        except TransientError as exc:
            if delivery >= retry.deliveries:
                await self._give_up(message, event, delivery, exc)
                return
            log.warning("outbound %s: %s requeued (%s)", self.destination.name, event.id, exc.public_message)
            await self.sleep(retry.delay(delivery * retry.tries))
            await message.nack(requeue=True)
        except Exception as exc:  # a refusal, or a bug in a render: give up at once, with an alert
            if not isinstance(exc, GatewayError):
                log.exception("outbound %s: %s failed", self.destination.name, event.id)
            await self._give_up(message, event, delivery, exc)
        else:
            await message.ack()

    async def _handle(self, event: CloudEvent, delivery: int) -> None:
        d, ledger = self.destination, self.runtime.deliveries
        if await ledger.settled(d.name, event.id):
            self.duplicates += 1
            return
        request = await self._render(event)
        if request is not None:
            after = (delivery - 1) * d.retry.tries
            await retrying(d.retry, lambda: self.outbound.deliver(request), after=after, sleep=self.sleep)
            self.delivered += 1
            log.info("outbound %s: %s delivered", d.name, event.routing_key)
        await ledger.settle(d.name, event.id)
        self.handled += 1

    async def _render(self, event: CloudEvent) -> R | None:
        order_id, d = event.data.get("order_id"), self.destination
        if not isinstance(order_id, str):
            return None
        view = await self.runtime.orders.view(d.partner, order_id)
        if view is None:
            return None  # not an order of this destination's: not its to hear about
        ledger = self.runtime.deliveries
        if waiting := await ledger.unsettled_before(d.name, event, order_id, d.events):
            raise _Waiting(detail=f"{waiting} earlier event(s) of the order not settled")
        placed = await ledger.placing_message(d.partner, order_id)
        return self.outbound.render(event, replace(view, placing_message_id=placed), d.profile)

    async def _give_up(
        self, message: AbstractIncomingMessage, event: CloudEvent, deliveries: int, exc: Exception
    ) -> None:
        d = self.destination
        reason = exc.public_message if isinstance(exc, GatewayError) else type(exc).__name__
        log.warning("outbound %s: %s given up after %d deliveries", d.name, event.id, deliveries)
        try:
            await self.runtime.deliveries.give_up(
                d.name, event, partner=d.partner.id, adapter=d.adapter, attempts=deliveries, reason=reason
            )
        except TransientError:
            # The alert could not be written: keep the message on the queue rather than lose both.
            await message.nack(requeue=True)
            return
        self.given_up += 1
        await message.reject(requeue=False)
