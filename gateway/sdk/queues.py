"""Inbound AMQP queues: a partner that speaks over RabbitMQ (a manufacturer's MES) publishes to the
gateway's own queue `cgt.inbound.<kind>.<partner>` (quorum, dead-letters to `cgt.dlx`, a delivery
limit), and each message goes through the one door like any other.

Who sent it is the queue it came on (the broker lets only that partner write to it), and its
`partner` header must name the same partner, one the registry knows for this adapter. What
happens next is decided as the event consumer decides (gateway/bus/consumer.py):

    applied, quarantined, ignored   committed (or nothing to keep): acked
    rejected (malformed, unmappable, not permitted...)
                                    kept raw by the door, then dead-lettered to `cgt.dlx` with the
                                    reason in its headers (`x-cgt-error`, `x-cgt-reason`), acked
    a wrong or missing partner      dead-lettered with the reason; nothing stored
    TransientError (database down)  nacked and requeued; at the queue's delivery limit, dead-lettered

An adapter whose partners send several dialects on one queue (a manufacturer's CloudEvents and
B2MML) passes `dialect`: it names the adapter of each message from its content type and body, or
raises UnsupportedMessage, and the message is dead-lettered with that reason.

A dead letter is a copy published (confirmed) to `cgt.dlx` before the original is acked: a reject
cannot carry a reason, and a message must never be acked before its copy is safe.

A sender that wants to know what became of each message, as an HTTP sender reads its answer, asks
with RabbitMQ's direct reply-to: `reply_to` `amq.rabbitmq.reply-to` (consumed on the publishing
channel) and a `correlation_id`. The gateway answers on it before it acks, with the same JSON the
HTTP route answers (the outcome, or a problem carrying it; a repeat's answer carries the header
`x-cgt-repeat: true`); a dead-lettered message is answered `rejected` with the reason. A `reply_to` naming anything else is not answered: the gateway never
publishes into a queue a partner names.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
)

from gateway.bus.dead_letters import DEAD_AT_HEADER, ERROR_HEADER, QUEUE_HEADER, REASON_HEADER
from gateway.bus.topology import DEAD_LETTERS, consumer_queue_arguments, declare_or_keep, declare_topology
from gateway.errors import NotAuthenticated, TransientError, UnsupportedMessage
from gateway.partners import Partner
from gateway.sdk.answers import outcome_json

if TYPE_CHECKING:
    from gateway.adapter_contract import Adapter
    from gateway.ports import Runtime

log = logging.getLogger(__name__)

PARTNER_HEADER = "partner"
DIRECT_REPLY = "amq.rabbitmq.reply-to"
REPEAT_HEADER = "x-cgt-repeat"


def inbound_queue_name(kind: str, partner: str) -> str:
    return f"cgt.inbound.{kind}.{partner}"


@dataclass
class InboundQueues:
    """Consume the inbound queues of an adapter's partners (all of its partners by default)."""

    runtime: Runtime
    adapter: Adapter
    kind: str  # the middle of the queue's name, e.g. "mes"
    partners: Iterable[Partner] | None = None
    # content type, body -> the adapter of this message (None: always `adapter`)
    dialect: Callable[[str | None, bytes], Adapter] | None = None
    delivery_limit: int = 5
    prefetch: int = 20
    handled: int = 0
    dead_lettered: int = 0
    _connection: AbstractConnection | None = field(default=None, repr=False)
    _dlx: AbstractExchange | None = field(default=None, repr=False)
    _replies: AbstractExchange | None = field(default=None, repr=False)

    async def start(self) -> InboundQueues:
        partners = list(self.partners or (p for p in self.runtime.partners if p.speaks(self.adapter.name)))
        self._connection = await aio_pika.connect_robust(self.runtime.settings.amqp_url)
        publishing = await self._connection.channel(publisher_confirms=True)
        await declare_topology(publishing)
        self._dlx = await publishing.get_exchange(DEAD_LETTERS)
        self._replies = publishing.default_exchange
        for partner in partners:
            channel: AbstractChannel = await self._connection.channel()
            # quorum, dead letters to cgt.dlx, a delivery limit; one made with another limit keeps its own
            name = inbound_queue_name(self.kind, partner.id)
            queue = await declare_or_keep(channel, name, consumer_queue_arguments(self.delivery_limit))
            await channel.set_qos(prefetch_count=self.prefetch)  # after: declaring may reopen it
            await queue.consume(self._consumer(partner))
        return self

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def _consumer(self, partner: Partner) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._handle(partner, message)

        return on_message

    def _sender(self, queue_partner: Partner, message: AbstractIncomingMessage, adapter: Adapter) -> Partner:
        named = (message.headers or {}).get(PARTNER_HEADER)
        if isinstance(named, bytes):
            named = named.decode("utf-8", "replace")
        if named != queue_partner.id:
            raise NotAuthenticated("the partner header does not name the queue's partner")
        partner = self.runtime.partners.get(queue_partner.id)
        if not partner.speaks(adapter.name):
            raise NotAuthenticated("the partner does not speak this queue's dialect")
        return partner

    async def _handle(self, queue_partner: Partner, message: AbstractIncomingMessage) -> None:
        try:
            adapter = self.dialect(message.content_type, message.body) if self.dialect else self.adapter
            sender = self._sender(queue_partner, message, adapter)
        except (NotAuthenticated, UnsupportedMessage) as exc:
            await self._dead_letter(queue_partner, message, type(exc).__name__, exc.public_message)
            return
        try:
            outcome, _ = await self.runtime.door.accept(
                adapter, sender, message.body, transport="amqp", content_type=message.content_type
            )
        except TransientError as exc:
            previous = (message.headers or {}).get("x-delivery-count", 0)
            deliveries = (previous if isinstance(previous, int) else 0) + 1
            if deliveries < self.delivery_limit:
                log.warning("inbound queue %s: transient failure; requeued", queue_partner.id)
                await message.nack(requeue=True)
            else:
                await self._dead_letter(queue_partner, message, type(exc).__name__, exc.public_message)
            return
        if outcome.status == "rejected":
            await self._dead_letter(
                queue_partner,
                message,
                outcome.error or "RejectedMessage",
                outcome.reason or "rejected",
                outcome_json(outcome),
            )
            return
        await self._reply(message, outcome_json(outcome), repeat=outcome.duplicate)
        self.handled += 1
        await message.ack()

    async def _reply(self, message: AbstractIncomingMessage, answer: bytes, *, repeat: bool = False) -> None:
        """The answer on the sender's direct reply-to, if it asked; best effort (what became of the
        message is stored either way). `repeat`: it answers a message taken before (the header
        `x-cgt-repeat: true`, as HTTP's `Idempotent-Replayed`)."""
        to = message.reply_to or ""
        if self._replies is None or not to.startswith(DIRECT_REPLY):
            return
        reply = aio_pika.Message(
            answer,
            content_type="application/json",
            correlation_id=message.correlation_id,
            headers={REPEAT_HEADER: "true"} if repeat else None,
        )
        try:
            await self._replies.publish(reply, routing_key=to)
        except Exception as exc:  # the sender went away: nothing to answer
            log.info("inbound queue: the reply was not delivered (%s)", type(exc).__name__)

    async def _dead_letter(
        self,
        queue_partner: Partner,
        message: AbstractIncomingMessage,
        error: str,
        reason: str,
        answer: bytes | None = None,
    ) -> None:
        assert self._dlx is not None, "started"
        queue = inbound_queue_name(self.kind, queue_partner.id)
        headers = {
            **(message.headers or {}),
            ERROR_HEADER: error,
            REASON_HEADER: reason,
            QUEUE_HEADER: queue,
            DEAD_AT_HEADER: datetime.now(UTC).replace(microsecond=0),
        }
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            message_id=message.message_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await self._dlx.publish(copy, routing_key=message.routing_key or "inbound")
        except Exception:  # the copy is not safe: keep the original rather than lose both
            log.exception("inbound queue: dead letter not confirmed; requeued")
            await message.nack(requeue=True)
            return
        log.warning("inbound queue: message dead-lettered: %s (%s)", error, reason)
        self.dead_lettered += 1
        refused = {"type": "about:blank", "title": error, "detail": reason, "outcome": "rejected"}
        await self._reply(message, answer or orjson.dumps(refused))
        await message.ack()
