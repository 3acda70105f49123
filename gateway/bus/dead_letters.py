"""Dead letters (`cgt.dead`): what a consumer gave up on, read and sent back where it came from.

Two kinds land there. An outbound consumer's given-up event (`cgt.consumer.<name>`, after
`delivery.failed`) or poison message is dead-lettered by RabbitMQ, which records where from in
`x-death`; an inbound queue's refused message (`cgt.inbound.<kind>.<partner>`) is a copy the
gateway publishes, with `x-cgt-queue`, `x-cgt-error`, `x-cgt-reason` and `x-cgt-dead-at`.

Reading takes every message unacknowledged and gives back those not sent on when the channel
closes, so a listing changes nothing. Sending one back publishes it (confirmed) to its queue
through the default exchange, then acknowledges the dead copy: a crash in between leaves both,
and the consumer's de-duplication by event id makes the second a repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aiormq.exceptions import ChannelNotFoundEntity

from gateway.bus.topology import DEAD_QUEUE

CONSUMER_PREFIX = "cgt.consumer."
# What the gateway writes on the dead letters it makes (an inbound queue's refusals).
ERROR_HEADER = "x-cgt-error"
REASON_HEADER = "x-cgt-reason"
QUEUE_HEADER = "x-cgt-queue"  # the queue it came from, to be sent back to
DEAD_AT_HEADER = "x-cgt-dead-at"  # when it was dead-lettered
# What dead-lettering added: dropped when the message goes back to its queue.
_ADDED = ("x-death", "x-delivery-count", ERROR_HEADER, REASON_HEADER, QUEUE_HEADER, DEAD_AT_HEADER)
_ADDED_PREFIXES = ("x-first-death-", "x-last-death-")


@dataclass(frozen=True)
class DeadLetter:
    position: int  # 1 for the oldest in the queue
    event_id: str | None
    type: str | None  # the CloudEvent's type, when the body is one
    subject: str | None  # its subject (a COI), likewise
    queue: str | None  # where it was given up
    reason: str  # the gateway's reason, else RabbitMQ's (rejected, delivery_limit, expired)
    at: datetime | None  # when it was dead-lettered

    @property
    def consumer(self) -> str | None:
        """The outbound consumer whose ledger settled it, when it came from one."""
        if self.queue and self.queue.startswith(CONSUMER_PREFIX):
            return self.queue.removeprefix(CONSUMER_PREFIX)
        return None

    def summary(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "event_id": self.event_id,
            "type": self.type,
            "subject": self.subject,
            "queue": self.queue,
            "consumer": self.consumer,
            "reason": self.reason,
            "at": self.at.isoformat() if self.at else None,
        }


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def describe(position: int, message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    deaths = headers.get("x-death")
    first = deaths[0] if isinstance(deaths, list) and deaths else None
    death: dict[str, Any] = dict(first) if isinstance(first, dict) else {}
    try:
        body = orjson.loads(message.body)
    except orjson.JSONDecodeError:
        body = None
    event = body if isinstance(body, dict) else {}
    at = death.get("time") or headers.get(DEAD_AT_HEADER)
    return DeadLetter(
        position=position,
        event_id=message.message_id or _text(event.get("id")),
        type=_text(event.get("type")),
        subject=_text(event.get("subject")),
        queue=_text(headers.get(QUEUE_HEADER)) or _text(death.get("queue")),
        reason=_text(headers.get(REASON_HEADER)) or _text(death.get("reason")) or "unknown",
        at=at if isinstance(at, datetime) else None,
    )


async def read(channel: AbstractChannel, limit: int) -> list[tuple[DeadLetter, AbstractIncomingMessage]]:
    """Up to `limit` dead letters, oldest first, each held unacknowledged by `channel` (none
    where no gateway ever declared `cgt.dead`)."""
    try:
        queue = await channel.declare_queue(DEAD_QUEUE, passive=True)
    except ChannelNotFoundEntity:
        return []
    held: list[tuple[DeadLetter, AbstractIncomingMessage]] = []
    while len(held) < limit:
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            break
        held.append((describe(len(held) + 1, message), message))
    return held


async def queue_exists(connection: AbstractConnection, name: str) -> bool:
    """Whether the queue is there to send back to (asked on a channel of its own: a missing
    queue closes the channel that asked)."""
    probe = await connection.channel()
    try:
        await probe.declare_queue(name, passive=True)
    except ChannelNotFoundEntity:
        return False
    finally:
        if not probe.is_closed:
            await probe.close()
    return True


async def send_back(channel: AbstractChannel, letter: DeadLetter, message: AbstractIncomingMessage) -> None:
    """Publish the message to the queue it was given up in (confirmed, and refused by the broker
    when that queue no longer exists), then acknowledge the dead copy."""
    assert letter.queue is not None, "a dead letter of unknown origin cannot be sent back"
    headers = {
        k: v
        for k, v in (message.headers or {}).items()
        if k not in _ADDED and not k.startswith(_ADDED_PREFIXES)
    }
    again = aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        timestamp=message.timestamp,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    await channel.default_exchange.publish(again, routing_key=letter.queue, mandatory=True)
    await message.ack()
