"""Status back to each site's EHR: one outbound destination per site whose profile names an
`outbound` MLLP destination, run by the SDK's outbound runner (which fetches the site's own view
of the order, retries, keeps each order's events in order and dead-letters with
`delivery.failed`). Here: what the site hears (`render`) and how it is sent (`deliver`).

Transient failures are tried `attempts` times within a delivery (with backoff), then redelivered
by the queue up to the delivery limit; an AR/CR is given up at once.
"""

from __future__ import annotations

import logging

from adapters.hl7v2 import ack as acks
from adapters.hl7v2.header import read_header
from adapters.hl7v2.profile import Outbound, SiteProfile
from adapters.hl7v2.render import SiteOrder, control_id, person_name, status_message
from adapters.hl7v2.sender import MllpClient, send
from gateway.sdk import (
    CloudEvent,
    Destination,
    OrderView,
    OutboundRunner,
    OutboundRuntime,
    Partner,
    Retry,
    retrying,
    utcnow,
)

log = logging.getLogger(__name__)
ADAPTER = "hl7v2"
Request = tuple[bytes, str]  # the message, and its MSH-10 the ACK must name


def site_order(view: OrderView, profile: SiteProfile, *, acceptance: bool) -> SiteOrder:
    """The order as the site knows it: its own placer number and MRN, its patient's name."""
    refs = {r.namespace: r.value for r in view.refs}
    order = view.order
    name = person_name(order.patient.family_name, order.patient.given_name)
    product = order.product
    return SiteOrder(
        refs.get(profile.orders.placer_namespace),
        refs.get(profile.mrn.namespace),
        name,
        product.code,
        product.name,
        product.system,
        view.placing_message_id if acceptance else None,
    )


class SiteOutbound:
    """The outbound side of one site: render and deliver, run by an OutboundRunner."""

    def __init__(
        self,
        runtime: OutboundRuntime,
        partner: Partner,
        profile: SiteProfile,
        outbound: Outbound,
        prefix: str = ADAPTER,
    ) -> None:
        self.partner, self.profile, self.outbound = partner, profile, outbound
        self.client = MllpClient(
            outbound.host,
            outbound.port,
            connect_timeout=outbound.connect_timeout,
            ack_timeout=outbound.ack_timeout,
        )
        self.retry = Retry(
            tries=outbound.attempts,
            deliveries=outbound.delivery_limit or runtime.settings.consumer_delivery_limit,
            backoff=outbound.backoff,
        )
        events = tuple(dict.fromkeys((*outbound.events, "identity.resolved")))  # rejections too
        destination = Destination(f"{prefix}.{partner.id}", partner, ADAPTER, profile, events, self.retry)
        self.consumer = OutboundRunner(runtime, destination, self)
        self.consuming = self.consumer.consuming

    @property
    def delivered(self) -> int:
        return self.consumer.delivered

    def start(self) -> None:
        """Consume in the background: a broker that is down at start-up delays, never blocks, the gateway."""
        self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.client.close()

    def render(self, event: CloudEvent, view: OrderView, profile: SiteProfile) -> Request | None:
        order = site_order(view, profile, acceptance=event.routing_key == "order.accepted")
        message = status_message(event, order, profile, self.outbound, now=utcnow())
        return None if message is None else (message, control_id(event))

    def render_notice(self, event: CloudEvent, profile: SiteProfile) -> Request | None:
        """A message of this site's, held and then rejected on review: an application reject
        (ACK, MSA AR naming its MSH-10, ERR 204) on the outbound link."""
        data = event.data
        if event.routing_key != "identity.resolved" or data.get("decision") != "rejected":
            return None
        message_id = data.get("message_id")
        if data.get("adapter") != ADAPTER or not isinstance(message_id, str):
            return None
        text = f"rejected on identity review (quarantine {data.get('quarantine_id')}); not applied"
        verdict = acks.Verdict("reject", "204", None, text, "identity_review")
        message = acks.render(None, verdict, control_id=message_id, application=True, ask_accept=True)
        head = read_header(message)
        return None if head is None else (message, head.control_id)

    async def deliver(self, request: Request) -> None:
        """One try, with no transaction open: the MLLP exchange holds no lock."""
        message, control = request
        await send(self.client, message, control, self.outbound.retry_on)

    async def acknowledge(self, message: bytes, control_id: str) -> None:
        """An application acknowledgement (MSH-16) to this site's EHR, on the outbound link, with
        the link's retries. Not queued: a restart between commit and delivery loses it."""
        await retrying(self.retry, lambda: send(self.client, message, control_id, self.outbound.retry_on))
        log.info("HL7 outbound to %s: application acknowledgement delivered", self.partner.id)
