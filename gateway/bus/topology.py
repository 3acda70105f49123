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
# The newest this many unrouted events are kept (the oldest dropped): an event type nobody binds
# must not fill the broker. Every event is in the database anyway (`events`); this is a window.
UNROUTED_KEEP = 100_000


async def declare_topology(channel: AbstractChannel) -> AbstractExchange:
    """Declare (idempotently) the exchanges and the gateway's safety-net queues."""
    unrouted = await channel.declare_exchange(UNROUTED, aio_pika.ExchangeType.FANOUT, durable=True)
    unrouted_queue = await declare_or_keep(channel, UNROUTED, unrouted_arguments())
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


def unrouted_arguments() -> dict[str, Any]:
    return {"x-queue-type": "quorum", "x-max-length": UNROUTED_KEEP, "x-overflow": "drop-head"}


async def declare_or_keep(channel: AbstractChannel, name: str, arguments: dict[str, Any]) -> AbstractQueue:
    """A durable queue with `arguments`; one that already exists with others (made by an earlier
    version, or before a setting changed) is used as it is, with a warning: RabbitMQ refuses to
    redeclare it, and deleting it would drop its messages. A policy changes an existing queue's
    limits (`rabbitmqctl set_policy <name> '^<queue>$' '{"max-length": N}' --apply-to queues`)."""
    try:
        return await channel.declare_queue(name, durable=True, arguments=arguments)
    except ChannelPreconditionFailed:
        log.warning("queue %s exists with other arguments than %s: it keeps its own", name, arguments)
        await channel.reopen()  # the broker closed the channel on the refused declaration
        return await channel.declare_queue(name, passive=True)


def consumer_queue_arguments(delivery_limit: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_LETTERS,
        "x-delivery-limit": delivery_limit,
    }


async def declare_consumer_queue(
    channel: AbstractChannel, name: str, patterns: Sequence[str], delivery_limit: int
) -> AbstractQueue:
    """A durable quorum queue bound to `cgt.events` by `patterns` (e.g. `shipment.#`); one that
    exists with another delivery limit keeps its own (`declare_or_keep`; a policy's
    `delivery-limit` changes it)."""
    exchange = await declare_topology(channel)
    queue = await declare_or_keep(channel, name, consumer_queue_arguments(delivery_limit))
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
