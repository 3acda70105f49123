"""The RabbitMQ topology: where canonical events go, and where the ones nobody took end up."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aiormq.exceptions import ChannelPreconditionFailed

log = logging.getLogger(__name__)

EVENTS = "cgt.events"  # topic; routing key = canonical event name
DEAD_LETTERS = "cgt.dlx"  # topic; where consumers' rejected and over-delivered messages go
DEAD_QUEUE = "cgt.dead"
UNROUTED = "cgt.unrouted"  # alternate exchange and queue: events no binding matched, kept


async def declare_topology(channel: AbstractChannel) -> AbstractExchange:
    """Declare (idempotently) the exchanges and the gateway's safety-net queues."""
    unrouted = await channel.declare_exchange(UNROUTED, aio_pika.ExchangeType.FANOUT, durable=True)
    unrouted_queue = await channel.declare_queue(UNROUTED, durable=True, arguments={"x-queue-type": "quorum"})
    await unrouted_queue.bind(unrouted)
    dlx = await channel.declare_exchange(DEAD_LETTERS, aio_pika.ExchangeType.TOPIC, durable=True)
    dead = await channel.declare_queue(DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    await dead.bind(dlx, routing_key="#")
    return await channel.declare_exchange(
        EVENTS,
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": UNROUTED},
    )


def consumer_queue_arguments(delivery_limit: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_LETTERS,
        "x-delivery-limit": delivery_limit,
    }


async def declare_consumer_queue(
    channel: AbstractChannel, name: str, patterns: Sequence[str], delivery_limit: int
) -> AbstractQueue:
    """A durable quorum queue bound to `cgt.events` by `patterns` (e.g. `shipment.#`).

    A queue that already exists with other arguments (a delivery limit changed since it was made)
    is used as it is, with a warning: RabbitMQ refuses to redeclare it, and deleting it would drop
    its messages. A policy changes the limit of an existing queue
    (`rabbitmqctl set_policy <name> '^<queue>$' '{"delivery-limit": N}' --apply-to queues`)."""
    exchange = await declare_topology(channel)
    try:
        queue = await channel.declare_queue(
            name, durable=True, arguments=consumer_queue_arguments(delivery_limit)
        )
    except ChannelPreconditionFailed:
        log.warning(
            "queue %s exists with other arguments than a delivery limit of %d: it keeps its own",
            name,
            delivery_limit,
        )
        await channel.reopen()  # the broker closed the channel on the refused declaration
        queue = await channel.declare_queue(name, passive=True)
    for pattern in patterns:
        await queue.bind(exchange, routing_key=pattern)
    return queue


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching, as the broker binds: `*` one word, `#` zero or more."""

    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return any(match(p[1:], k[i:]) for i in range(len(k) + 1))
        return bool(k) and p[0] in ("*", k[0]) and match(p[1:], k[1:])

    return match(pattern.split("."), key.split("."))
