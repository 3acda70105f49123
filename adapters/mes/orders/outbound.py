"""Manufacturing orders out, on the SDK's outbound runner: one destination a manufacturer with an
order profile, hearing `order.placed` (the manufacturing order) and `collection.scheduled` (the
slot request). The runner reads the manufacturer's own view of the order (only the orders it is
assigned, `mappings/mes/assignments.yaml`; only what `mappings/disclosure/` lets it have), retries
with backoff, and gives up with `delivery.failed`. Here: render (JSON or B2MML, pure) and deliver
(AMQP or REST, adapters.mes.orders.transport). A REST MES that decides at once has its answer
taken through the door as its own message (adapters.mes.orders.answer).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import httpx
import orjson

from adapters.mes.orders.answer import AnswerRecord, MesAnswer
from adapters.mes.orders.b2mml import XML, render_b2mml
from adapters.mes.orders.document import manufacturing_order
from adapters.mes.orders.profile import OrderProfile, Rest
from adapters.mes.orders.transport import AmqpQueue, MesRefused, OrderMessage, RestEndpoint
from gateway.sdk import (
    Adapter,
    CloudEvent,
    ConfigError,
    Destination,
    OrderView,
    OutboundRunner,
    Retry,
    Runtime,
    TransientError,
    utcnow,
)

log = logging.getLogger(__name__)
ADAPTER = "mes-orders"


def render_order(event: CloudEvent, view: OrderView, profile: OrderProfile) -> OrderMessage | None:
    document = manufacturing_order(event, view)
    if document is None:
        return None
    if profile.format == "json":
        body, content_type = orjson.dumps(document.as_json()), "application/json"
    else:
        body, content_type = render_b2mml(document, profile.format), XML
    return OrderMessage(event.id, event.routing_key, document.kind, document.coi, content_type, body)


@dataclass
class MesOrders:
    """The outbound side of one manufacturer: render the order, send it by its transport."""

    runtime: Runtime
    adapter: Adapter
    manufacturer: str
    transport: AmqpQueue | RestEndpoint

    def render(self, event: CloudEvent, view: OrderView, profile: OrderProfile) -> OrderMessage | None:
        return render_order(event, view, profile)

    async def deliver(self, request: OrderMessage) -> None:
        if isinstance(self.transport, AmqpQueue):
            await self.transport.send(request)
            return
        answer = await self.transport.send(request)
        await self._take(request, answer)

    async def _take(self, request: OrderMessage, body: bytes) -> None:
        """The MES's answer, when it decides something, through the door as its own message."""
        try:
            decided = MesAnswer.model_validate(orjson.loads(body)) if body.strip() else MesAnswer()
        except (orjson.JSONDecodeError, ValueError):
            log.info(
                "%s answered the %s of %s with no decision we read",
                self.manufacturer,
                request.kind,
                request.coi,
            )
            return
        if decided == MesAnswer():
            return
        record = AnswerRecord(
            order=request.event_id,
            manufacturer=self.manufacturer,
            coi=request.coi,
            answered_at=utcnow(),
            answer=decided,
        )
        partner = self.runtime.partners.get(self.manufacturer)
        outcome, _ = await self.runtime.door.accept(
            self.adapter,
            partner,
            record.model_dump_json().encode(),
            transport="mes-api",
            content_type="application/json",
        )
        if outcome.status == "rejected":
            raise MesRefused(f"the manufacturer's answer was refused: {outcome.reason}")

    async def close(self) -> None:
        await self.transport.close()


@dataclass
class OrderRunners:
    runners: list[OutboundRunner[OrderProfile, OrderMessage]] = field(default_factory=list)
    outbound: list[MesOrders] = field(default_factory=list)

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.stop()
        for sender in self.outbound:
            await sender.close()


def _transport(runtime: Runtime, profile: OrderProfile) -> AmqpQueue | RestEndpoint | None:
    config = profile.transport
    if not isinstance(config, Rest):
        return AmqpQueue(runtime.settings.amqp_url, profile.queue)
    production = runtime.settings.env == "production"
    url = config.url.resolve(production)
    if not url:
        log.info("manufacturing orders to %s are off: %s is not set", profile.manufacturer, config.url.env)
        return None
    if not url.startswith(("https://", "http://")):
        raise ConfigError(
            f"manufacturing orders to {profile.manufacturer}: {config.url.env} is not an http(s) URL"
        )
    key = config.key.resolve(production)
    if not key:
        raise ConfigError(f"manufacturing orders to {profile.manufacturer}: {config.key.env} is not set")
    client = httpx.AsyncClient(timeout=httpx.Timeout(config.timeout_seconds))
    return RestEndpoint(url.rstrip("/"), key, client)


async def start_orders(runtime: Runtime, adapter: Adapter, profiles: list[OrderProfile]) -> OrderRunners:
    """One destination a manufacturer with an order profile; queues bound before it returns when
    the broker is up (else as soon as it is)."""
    running = OrderRunners()
    for profile in profiles:
        transport = _transport(runtime, profile)
        if transport is None:
            continue
        outbound = MesOrders(runtime, adapter, profile.manufacturer, transport)
        running.outbound.append(outbound)
        retry = Retry(
            tries=profile.attempts,
            deliveries=runtime.settings.consumer_delivery_limit,
            backoff=profile.backoff_seconds,
            max_backoff=profile.max_backoff_seconds,
        )
        partner = runtime.partners.get(profile.manufacturer)
        destination = Destination(
            f"{ADAPTER}.{profile.manufacturer}", partner, ADAPTER, profile, profile.events, retry
        )
        runner = OutboundRunner(runtime, destination, outbound)
        try:
            await runner.open()
            if isinstance(transport, AmqpQueue):
                await transport.open()  # the manufacturer's queue exists before the first order
        except TransientError:
            runner.start()
        except (Exception, asyncio.CancelledError) as exc:
            # The queue could not be declared: it is declared again on the first send. aiormq
            # reports a channel the broker closed under the call as a CancelledError; only this
            # task's own cancellation (the start-up given up) goes on up.
            task = asyncio.current_task()
            if isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling():
                raise
            log.warning(
                "manufacturing orders to %s: queue not declared yet (%s)",
                profile.manufacturer,
                type(exc).__name__,
            )
        running.runners.append(runner)
    return running
