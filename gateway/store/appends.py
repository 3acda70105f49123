"""The appends of a batch of messages: raw messages, answers, quarantine rows, the orders'
timelines and the outbox, written together at the end of the transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from gateway.canonical.catalogue import CATALOGUE
from gateway.canonical.envelope import CloudEvent
from gateway.store import tables as t
from gateway.store.records import InboundRecord, StoredAnswer
from gateway.store.statements import insert_all

_APPENDS = [
    # Raw messages first: answers and quarantine rows refer to them.
    (
        "inbound",
        insert_all(
            t.inbound_messages,
            "id partner transport adapter message_id received_at content_type raw outcome reason order_id",
        ),
    ),
    (
        "answers",
        insert_all(t.idempotency_keys, "partner message_id inbound_id outcome answer rendered content_hash"),
    ),
    (
        "quarantine",
        insert_all(t.quarantine, "quarantine_id inbound_id partner reason detail command status created_at"),
    ),
    ("timeline", insert_all(t.events, "event_id order_id type time envelope inbound_id")),
    ("outbox", insert_all(t.outbox, "event_id routing_key body created_at")),
]


@dataclass
class PendingWrites:
    """The appends of a batch of messages (raw messages, answers, events, outbox, quarantine),
    written together, one statement a table, at the end of the transaction."""

    inbound: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)

    def message(
        self, inbound_id: str, record: InboundRecord, outcome: str, reason: str | None, order_id: str | None
    ) -> None:
        self.inbound.append(
            {
                "id": inbound_id,
                "partner": record.partner,
                "transport": record.transport,
                "adapter": record.adapter,
                "message_id": record.message_id,
                "received_at": record.received_at,
                "content_type": record.content_type,
                "raw": record.raw,
                "outcome": outcome,
                "reason": reason,
                "order_id": order_id,
            }
        )

    def answer(self, record: InboundRecord, inbound_id: str, answer: StoredAnswer) -> None:
        self.answers.append(
            {
                "partner": record.partner,
                "message_id": record.message_id,
                "inbound_id": inbound_id,
                "outcome": answer.outcome["status"],
                "answer": answer.outcome,
                "rendered": answer.rendered,
                "content_hash": answer.content_hash,
            }
        )

    def events(self, envelopes: list[CloudEvent], order_id: str | None, inbound_id: str | None) -> None:
        for env in envelopes:
            body = env.to_json()  # serialized once: the outbox's body and the timeline's JSON
            self.timeline.append(
                {
                    "event_id": env.id,
                    "order_id": order_id,
                    "type": env.type,
                    "time": env.time,
                    "envelope": orjson.Fragment(body),
                    "inbound_id": inbound_id,
                }
            )
            if CATALOGUE[env.routing_key].quiet:
                continue  # kept on the order's timeline, never published (what it means is, instead)
            self.outbox.append(
                {"event_id": env.id, "routing_key": env.routing_key, "body": body, "created_at": env.time}
            )

    def quarantined(
        self,
        *,
        quarantine_id: str,
        inbound_id: str,
        partner: str,
        reason: str,
        detail: str,
        commands: list[dict[str, Any]],
        at: datetime,
    ) -> None:
        self.quarantine.append(
            {
                "quarantine_id": quarantine_id,
                "inbound_id": inbound_id,
                "partner": partner,
                "reason": reason,
                "detail": detail,
                "command": {"commands": commands},
                "status": "open",
                "created_at": at,
            }
        )

    def flush(self, conn: Connection) -> None:
        for name, statement in _APPENDS:
            statement.execute_many(conn, getattr(self, name))
