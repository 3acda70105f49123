"""The outbound contract and the one runner that carries it out (DESIGN §3).

An adapter says what to send and how; the runner does the rest, the same for every destination:

    render(event, view, profile) -> request | None   pure: None when the destination hears nothing
    deliver(request)                                  the transport, one try; raises TransientError
                                                      to try again, any other GatewayError to give up
    render_notice(event, profile) -> request | None  optional: an event addressed to the partner
                                                      (`data.partner`), of no order (a rejection)

The runner subscribes a durable quorum queue (`cgt.consumer.<name>`) to the destination's event
patterns, fetches the destination's disclosure-filtered view of the order (`Orders.view`: only
orders it is a party to, only its own and the shared identifiers), renders, delivers, and settles
the event in the `Deliveries` ledger before acking it. What happens next is the exception's:

    TransientError    tried `Retry.tries` times a delivery, up to `Retry.deliveries` deliveries,
                      with backoff throughout (the message stays unacked meanwhile; a crash hands
                      it back to the broker, whose delivery count the runner continues from)
    anything else     given up at once
    given up          `delivery.failed` raised and the event settled, in one transaction, then
                      the message rejected to `cgt.dlx`: nothing is given up silently

Order: events of different orders go side by side (`Destination.in_flight` at once); an event
waits while an event of the same order committed before it is not settled here, so a failing
delivery holds the later ones of its order back until it succeeds or is given up. An earlier
event the runner has not seen (published before its queue was bound, still in the outbox, or held
by another replica) is waited for `Retry.hold` seconds at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, Protocol, TypeVar

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from pydantic import ValidationError

from gateway.bus.topology import declare_consumer_queue
from gateway.canonical.envelope import CloudEvent
from gateway.errors import GatewayError, TransientError
from gateway.partners import Partner
from gateway.ports import Deliveries, Orders, OrderView
from gateway.sdk.retry import Retry, Sleep, retrying
from gateway.settings import Settings

__all__ = ["Destination", "Outbound", "OutboundRunner", "OutboundRuntime", "Retry", "retrying"]

log = logging.getLogger(__name__)

P = TypeVar("P")  # the destination's profile
R = TypeVar("R")  # what render makes and deliver sends
P_in = TypeVar("P_in", contravariant=True)
POLL_SECONDS = 0.25  # how often a waiting event looks again for an earlier one settled elsewhere


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
    retry: Retry = field(default_factory=Retry)
    in_flight: int = 16  # messages handled at once: the events of different orders go side by side
    # Also hear of orders the partner is not a party to yet (a courier to be booked for a leg):
    # the view is still the partner's disclosure profile's; render decides whether to act.
    prospective: bool = False


class OutboundRuntime(Protocol):
    """What the runner needs of the running gateway (a gateway.sdk Runtime has it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def orders(self) -> Orders: ...

    @property
    def deliveries(self) -> Deliveries: ...


async def _nothing() -> None:
    return None


class _GiveUp(Exception):
    def __init__(self, cause: Exception, deliveries: int) -> None:
        super().__init__(type(cause).__name__)
        self.cause, self.deliveries = cause, deliveries


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
        self._in_flight: set[str] = set()  # ids of the events this runner holds now
        self._settled = asyncio.Event()  # set (and replaced) whenever one of them is settled
        self._handling: set[asyncio.Task[object]] = set()

    @property
    def queue_name(self) -> str:
        return f"cgt.consumer.{self.destination.name}"

    async def open(self) -> None:
        """Bind the queue and consume; raises TransientError when the broker cannot be reached."""
        d = self.destination
        try:
            self._connection = await aio_pika.connect_robust(self.runtime.settings.amqp_url)
            channel = await self._connection.channel()
            queue = await declare_consumer_queue(channel, self.queue_name, d.events, d.retry.deliveries)
            await channel.set_qos(prefetch_count=d.in_flight)  # after declaring, which may reopen the channel
            await queue.consume(self._on_message)
        except Exception as exc:  # aio-pika's and the broker's many errors: not reachable yet
            await self.close()
            raise TransientError("the message broker is unreachable", detail=repr(exc)) from exc
        self.consuming.set()
        log.info("outbound %s consuming %s", d.name, ", ".join(d.events))

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
        """Stop consuming; events being delivered are dropped unacked: the broker delivers them again."""
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        for task in list(self._handling):
            task.cancel()
        await asyncio.gather(*self._handling, return_exceptions=True)
        await self.close()
        self.consuming.clear()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = CloudEvent.from_json(message.body)
        except ValidationError:
            log.warning("outbound %s: not a CloudEvent, dead-lettered", self.destination.name)
            await message.reject(requeue=False)
            return
        task = asyncio.current_task()
        if task is not None:
            self._handling.add(task)
        self._in_flight.add(event.id)
        previous = (message.headers or {}).get("x-delivery-count", 0)
        delivery = (previous if isinstance(previous, int) else 0) + 1  # > 1 after a crash or a stop
        try:
            await self._carry(event, delivery)
        except _GiveUp as gave_up:
            await self._give_up(message, event, gave_up)
        except TransientError as exc:  # the ledger could not be read or written: the broker retries
            log.warning("outbound %s: %s requeued (%s)", self.destination.name, event.id, exc.public_message)
            await self.sleep(self.destination.retry.delay(1))
            await message.nack(requeue=True)
        else:
            await message.ack()
        finally:
            self._in_flight.discard(event.id)
            self._settled.set()
            self._settled = asyncio.Event()
            if task is not None:
                self._handling.discard(task)

    async def _carry(self, event: CloudEvent, delivery: int) -> None:
        d, ledger = self.destination, self.runtime.deliveries
        order_id = event.data.get("order_id")
        # Independent reads side by side: on SQLite each waits on a thread of its own.
        settled, view = await asyncio.gather(
            ledger.settled(d.name, event.id),
            self.runtime.orders.view(d.partner, order_id, prospective=d.prospective)
            if isinstance(order_id, str)
            else _nothing(),
        )
        if settled:
            self.duplicates += 1
            return
        # No view: no order, or not an order of this destination's: not its to hear about, unless
        # the event is addressed to the partner itself (a notice).
        request = await self._render(event, view, delivery)
        if request is not None:
            await self._deliver(request, delivery)
            self.delivered += 1
            log.info("outbound %s: %s delivered", d.name, event.routing_key)
        await ledger.settle(d.name, event.id)
        self.handled += 1

    async def _deliver(self, request: R, delivery: int) -> None:
        """Tries within a delivery, deliveries up to the limit, with backoff throughout; the message
        stays unacked meanwhile (a crash hands it back to the broker, which counts the delivery)."""
        retry = self.destination.retry
        while True:
            try:
                after = (delivery - 1) * retry.tries
                await retrying(retry, lambda: self.outbound.deliver(request), after=after, sleep=self.sleep)
                return
            except TransientError as exc:
                if delivery >= retry.deliveries:
                    raise _GiveUp(exc, delivery) from exc
                log.warning(
                    "outbound %s: delivery %d failed (%s)",
                    self.destination.name,
                    delivery,
                    exc.public_message,
                )
                await self.sleep(retry.delay(delivery * retry.tries))
                delivery += 1
            except GatewayError as exc:  # a refusal: trying again would not change the answer
                raise _GiveUp(exc, delivery) from exc

    async def _render(self, event: CloudEvent, view: OrderView | None, delivery: int) -> R | None:
        """What the destination hears of its order's event; with no view, the notice of an event
        addressed to its partner (`render_notice`, when the outbound has one), or nothing."""
        d = self.destination
        notice: Callable[[CloudEvent, P], R | None] | None = getattr(self.outbound, "render_notice", None)
        if view is not None:
            order_id = view.order.order_id
            placed, _ = await asyncio.gather(
                self.runtime.deliveries.placing_message(d.partner, order_id),
                self._wait_for_earlier(event, order_id),
            )
            view = replace(view, placing_message_id=placed)
        elif notice is None or event.data.get("partner") != d.partner.id:
            return None
        try:
            if view is not None:
                return self.outbound.render(event, view, d.profile)
            return notice(event, d.profile) if notice else None
        except TransientError:
            raise
        except Exception as exc:  # a bug in a render: give up at once, with an alert
            log.exception("outbound %s: %s could not be rendered", d.name, event.id)
            raise _GiveUp(exc, delivery) from exc

    async def _wait_for_earlier(self, event: CloudEvent, order_id: str) -> None:
        """Until the events of the order committed before this one are settled here. One this
        runner holds settles in time (delivered or given up); one it has not seen is waited for
        `Retry.hold` seconds at most."""
        d = self.destination
        since = time.monotonic()
        while True:
            settled = self._settled
            earlier = await self.runtime.deliveries.unsettled_before(d.name, event, order_id, d.events)
            if not earlier:
                return
            if not earlier & self._in_flight and time.monotonic() - since >= d.retry.hold:
                log.warning(
                    "outbound %s: %s goes ahead of %d earlier event(s) not seen in %.0fs",
                    d.name,
                    event.id,
                    len(earlier),
                    d.retry.hold,
                )
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), POLL_SECONDS)

    async def _give_up(self, message: AbstractIncomingMessage, event: CloudEvent, gave_up: _GiveUp) -> None:
        d, exc = self.destination, gave_up.cause
        reason = exc.public_message if isinstance(exc, GatewayError) else type(exc).__name__
        log.warning("outbound %s: %s given up after %d deliveries", d.name, event.id, gave_up.deliveries)
        try:
            await self.runtime.deliveries.give_up(
                d.name,
                event,
                partner=d.partner.id,
                adapter=d.adapter,
                attempts=gave_up.deliveries,
                reason=reason,
            )
        except TransientError:
            # The alert could not be written: keep the message on the queue rather than lose both.
            await message.nack(requeue=True)
            return
        self.given_up += 1
        await message.reject(requeue=False)
