"""Push each order's Task to the site that placed it: `PUT {url}/Task/{id}` (an R4 rest-hook with
payload), signed with HMAC-SHA256, one status change after the other for each order.

The SDK's outbound runner carries it: it fetches the site's own view of the order, holds a later
change back while an earlier one of the order is not delivered, retries a site that is down or
slow (TransientError) with backoff up to the queue's delivery limit, and gives up at once on a 4xx
refusal; a change given up raises `delivery.failed`: nothing is given up silently.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import httpx
import orjson

from adapters.fhir.answers import FHIR_JSON
from adapters.fhir.profile import SiteProfile, all_profiles
from adapters.fhir.task import rejected_task, render_task
from gateway.sdk import (
    CloudEvent,
    ConfigError,
    Destination,
    GatewayError,
    OrderStatus,
    OrderView,
    OutboundRunner,
    OutboundRuntime,
    Partners,
    Retry,
    TransientError,
)

log = logging.getLogger(__name__)
ADAPTER = "fhir-r4"


class SiteRefused(GatewayError):
    public_message = "the site's FHIR server refused the Task"


@dataclass(frozen=True)
class TaskPut:
    order_id: str
    event_id: str
    body: bytes


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass
class TaskPush:
    """The Task push of one site: render the Task, PUT it signed."""

    url: str
    secret: str
    client: httpx.AsyncClient

    def render(self, event: CloudEvent, view: OrderView, profile: SiteProfile) -> TaskPut | None:
        status = event.data.get("status")
        if not status:
            return None
        task = render_task(view.order, view.refs, profile, status=OrderStatus(status), modified=event.time)
        return TaskPut(view.order.order_id, event.id, orjson.dumps(task))

    def render_notice(self, event: CloudEvent, profile: SiteProfile) -> TaskPut | None:
        """A request of this site's, held and then rejected on review: a Task of its own (the
        request may have made no order) with status `rejected`, focused on the request by the
        site's own id of it."""
        data = event.data
        if event.routing_key != "identity.resolved" or data.get("decision") != "rejected":
            return None
        if data.get("adapter") != ADAPTER or not isinstance(data.get("quarantine_id"), str):
            return None
        task = rejected_task(data["quarantine_id"], data.get("message_id"), event.time)
        return TaskPut(str(task["id"]), event.id, orjson.dumps(task))

    async def deliver(self, request: TaskPut) -> None:
        """Runs with no transaction open: the site may be slow."""
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": FHIR_JSON,
            "X-CGT-Event-Id": request.event_id,
            "X-CGT-Timestamp": stamp,
            "X-CGT-Signature": signature(self.secret, stamp, request.body),
        }
        try:
            response = await self.client.put(
                f"{self.url}/Task/{request.order_id}", content=request.body, headers=headers
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"the site's server did not answer ({type(exc).__name__})") from None
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise TransientError(f"the site's server answered {response.status_code}")
        if response.status_code >= 300:
            raise SiteRefused(f"the site's FHIR server refused the Task with {response.status_code}")
        log.info("Task of order %s pushed", request.order_id)


class NotifyRuntime(OutboundRuntime, Protocol):
    @property
    def partners(self) -> Partners: ...


@dataclass
class Pushing:
    runners: list[OutboundRunner[SiteProfile, TaskPut]]
    clients: list[httpx.AsyncClient]

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.stop()
        for client in self.clients:
            await client.aclose()


async def start_notifiers(runtime: NotifyRuntime) -> Pushing:
    """One destination per site whose profile asks for push and names its URL."""
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
        running.clients.append(client)
        retry = Retry(
            deliveries=runtime.settings.consumer_delivery_limit,
            backoff=config.backoff_seconds,
            max_backoff=config.max_backoff_seconds,
        )
        partner = runtime.partners.get(profile.partner)
        events = tuple(dict.fromkeys((*config.events, "identity.resolved")))  # rejections too
        destination = Destination(
            f"fhir-task-push.{profile.partner}", partner, ADAPTER, profile, events, retry
        )
        runner = OutboundRunner(runtime, destination, TaskPush(url.rstrip("/"), secret, client))
        await runner.open()  # its queue is bound before the first order can be accepted
        running.runners.append(runner)
    return running
