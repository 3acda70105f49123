"""Push each order's Task to the site that placed it: `PUT {url}/Task/{id}` (an R4 rest-hook with
payload), signed with HMAC-SHA256, one status change after the other for each order.

Retries follow the EventConsumer: a site that is down or slow -> TransientError after a backoff
sleep (requeued); after the queue's delivery limit, or at once for a 4xx refusal, the event is
dead-lettered and `delivery.failed` raised: nothing is given up silently.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NoReturn

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.fhir.answers import FHIR_JSON
from adapters.fhir.profile import Notifications, SiteProfile, all_profiles
from adapters.fhir.task import render_task
from gateway.bus.consumer import EventConsumer
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.ids import ExternalRef
from gateway.canonical.lifecycle import OrderStatus
from gateway.canonical.order import TherapyOrder
from gateway.errors import ConfigError, GatewayError, TransientError
from gateway.registry import Runtime
from gateway.sdk import OrderView
from gateway.service.notices import record_delivery_failure
from gateway.store import tables as t

log = logging.getLogger(__name__)
ADAPTER = "fhir-r4"
# An earlier event older than this is not waited for: it predates the push, or was settled.
WAIT_WINDOW = timedelta(minutes=15)


class SiteRefused(GatewayError):
    public_message = "the site's FHIR server refused the Task"


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: `*` one word, `#` zero or more."""

    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return any(match(p[1:], k[i:]) for i in range(len(k) + 1))
        return bool(k) and p[0] in ("*", k[0]) and match(p[1:], k[1:])

    return match(pattern.split("."), key.split("."))


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass
class TaskPush:
    engine: AsyncEngine
    profile: SiteProfile
    config: Notifications
    url: str
    secret: str
    client: httpx.AsyncClient
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    attempts: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"fhir-task-push.{self.profile.partner}"

    async def handle(self, event: CloudEvent) -> None:
        """Push one status change. Runs with no transaction open: the site may be slow."""
        order_id, status = event.data.get("order_id"), event.data.get("status")
        if not order_id or not status:
            return
        async with self.engine.connect() as conn:
            view = await order_view(conn, str(order_id), self.profile)
            waiting = await self.earlier_undelivered(conn, event, str(order_id)) if view else set()
        if view is None:
            return  # another site's order: not ours to tell
        if waiting:
            await self.retry_later(
                event, f"{len(waiting)} earlier status change(s) of the order not delivered yet"
            )
        task = render_task(
            view.order, view.refs, self.profile, status=OrderStatus(status), modified=event.time
        )
        await self.put_task(event, str(order_id), orjson.dumps(task))
        self.attempts.pop(event.id, None)

    async def put_task(self, event: CloudEvent, order_id: str, body: bytes) -> None:
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": FHIR_JSON,
            "X-CGT-Event-Id": event.id,
            "X-CGT-Timestamp": stamp,
            "X-CGT-Signature": signature(self.secret, stamp, body),
        }
        try:
            response = await self.client.put(f"{self.url}/Task/{order_id}", content=body, headers=headers)
        except httpx.HTTPError as exc:
            await self.retry_later(event, f"the site's server did not answer ({type(exc).__name__})")
        if response.status_code in (408, 429) or response.status_code >= 500:
            await self.retry_later(event, f"the site's server answered {response.status_code}")
        if response.status_code >= 300:
            raise SiteRefused(f"the site's FHIR server refused the Task with {response.status_code}")
        log.info("Task of %s pushed to %s (%s)", event.subject, self.profile.partner, event.type)

    async def retry_later(self, event: CloudEvent, reason: str) -> NoReturn:
        n = self.attempts[event.id] = self.attempts.get(event.id, 0) + 1
        await self.sleep(min(self.config.backoff_seconds * 2 ** (n - 1), self.config.max_backoff_seconds))
        raise TransientError(reason)

    async def dead_letter(self, event: CloudEvent, deliveries: int, reason: str) -> None:
        self.attempts.pop(event.id, None)
        await record_delivery_failure(
            self.engine,
            event,
            partner=self.profile.partner,
            adapter=ADAPTER,
            attempts=deliveries,
            reason=reason,
        )

    async def earlier_undelivered(self, conn: AsyncConnection, event: CloudEvent, order_id: str) -> set[str]:
        """Events of the same order published before this one, that this push has not settled."""
        o, e, done = t.outbox, t.events, t.consumed_events
        mine = select(o.c.id).where(o.c.event_id == event.id).scalar_subquery()
        rows = await conn.execute(
            select(e.c.event_id, e.c.type, e.c.envelope)
            .join(o, o.c.event_id == e.c.event_id)
            .where(e.c.order_id == order_id, o.c.id < mine, e.c.time >= event.time - WAIT_WINDOW)
        )
        earlier: set[str] = set()
        for row in rows:
            key = str(row.type).removeprefix("org.cgt.")
            if any(topic_matches(p, key) for p in self.config.events):
                earlier.add(str(row.event_id))
        if not earlier:
            return earlier
        consumed = await conn.execute(
            select(done.c.event_id).where(done.c.consumer == self.name, done.c.event_id.in_(earlier))
        )
        given_up = await conn.execute(
            select(e.c.envelope).where(e.c.order_id == order_id, e.c.type == "org.cgt.delivery.failed")
        )
        settled = {r.event_id for r in consumed} | {
            r.envelope["data"]["event_id"]
            for r in given_up
            if r.envelope["data"].get("adapter") == ADAPTER
            and r.envelope["data"].get("partner") == self.profile.partner
        }
        return earlier - settled


async def order_view(conn: AsyncConnection, order_id: str, profile: SiteProfile) -> OrderView | None:
    """The order, if the site placed it, with its identifiers and its patient's MRNs at the site."""
    row = (await conn.execute(select(t.orders.c.document).where(t.orders.c.order_id == order_id))).first()
    if row is None:
        return None
    order = TherapyOrder.model_validate(row.document)
    if order.ordering_site.id != profile.partner:
        return None
    cw = t.crosswalk
    mrn = profile.rule("mrn").namespace
    rows = await conn.execute(
        select(cw.c.namespace, cw.c.value)
        .where(
            (cw.c.order_id == order_id)
            | ((cw.c.patient_id == order.patient_id) & cw.c.order_id.is_(None) & (cw.c.namespace == mrn))
        )
        .order_by(cw.c.bound_at, cw.c.namespace)
    )
    refs = tuple(ExternalRef(namespace=r.namespace, value=r.value) for r in rows)
    return OrderView(order, refs)


@dataclass
class Pushing:
    consumers: list[EventConsumer]
    clients: list[httpx.AsyncClient]

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        for client in self.clients:
            await client.aclose()


async def start_notifiers(runtime: Runtime) -> Pushing:
    """One consumer per site whose profile asks for push and names its URL."""
    running = Pushing([], [])
    production = runtime.settings.env == "production"
    for profile in all_profiles():
        config = profile.notifications
        url = config.url.resolve() if config else None
        if config is None or not url:
            continue
        if profile.partner not in {p.id for p in runtime.partners}:
            raise ConfigError(f"FHIR push to {profile.partner}: no such partner")
        secret = config.secret.resolve(production)
        if not secret:
            raise ConfigError(f"FHIR push to {profile.partner}: secret {config.secret.env} is not set")
        client = httpx.AsyncClient(timeout=httpx.Timeout(config.timeout_seconds))
        push = TaskPush(runtime.engine, profile, config, url.rstrip("/"), secret, client)
        consumer = EventConsumer(
            runtime.engine,
            runtime.settings.amqp_url,
            name=push.name,
            patterns=config.events,
            deliver=push.handle,
            delivery_limit=runtime.settings.consumer_delivery_limit,
            prefetch=1,  # one at a time: each order's changes leave in the order they happened
            on_dead_letter=push.dead_letter,
        )
        running.clients.append(client)
        await consumer.start()
        running.consumers.append(consumer)
    return running
