"""Book each due leg with its courier, on the SDK's outbound runner: one destination a courier
with a booking profile, hearing `collection.scheduled` and `manufacturing.released`.

The runner reads the courier's own view of the order (its disclosure profile: COI, DIN, the
parties, the shipments; `prospective`, since a courier is a party to an order only once a shipment
is booked with it), `render` decides what to book (adapters.couriers.booking.render) and
`deliver` books it, then declares the shipment through the door:

    POST {api.url}/shipments      Idempotency-Key: the event's id (a retry books nothing twice)
    2xx                           -> `shipment.booked` accepted through the Door as the leg's
                                     shipper (the ordering site inbound, the manufacturer
                                     outbound), by this adapter, transport `courier-api`: the
                                     core authorises, applies, binds `courier:<id>:tracking`,
                                     audits and publishes it like any other message
    408, 429, 5xx, no answer      TransientError: tried again with backoff, then redelivered
    any other 4xx, an unreadable  given up at once: `delivery.failed`
    answer, a refused declaration
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx
import orjson
from pydantic import ValidationError

from adapters.couriers.booking.profile import BookingProfile
from adapters.couriers.booking.record import BookingRecord
from adapters.couriers.booking.render import LEG_DUE, Booking, ManufacturerOf, render_booking
from adapters.couriers.booking.wire import BookingAnswer
from gateway.sdk import (
    Adapter,
    CloudEvent,
    ConfigError,
    Destination,
    GatewayError,
    OrderView,
    OutboundRunner,
    Retry,
    Runtime,
    TransientError,
    utcnow,
)

log = logging.getLogger(__name__)
ADAPTER = "courier-booking"
TRANSPORT = "courier-api"


class CourierRefused(GatewayError):
    public_message = "the courier refused the booking"


class CourierAnswerUnreadable(GatewayError):
    public_message = "the courier's answer to the booking could not be read"


class BookingNotDeclared(GatewayError):
    public_message = "the booked shipment could not be declared on the order"


@dataclass
class CourierBooking:
    """The outbound side of one courier: render a booking, make it, declare the shipment."""

    runtime: Runtime
    adapter: Adapter
    api_url: str
    api_key: str
    client: httpx.AsyncClient
    manufacturer_of: ManufacturerOf

    def render(self, event: CloudEvent, view: OrderView, profile: BookingProfile) -> Booking | None:
        return render_booking(event, view, profile, self.manufacturer_of)

    async def deliver(self, request: Booking) -> None:
        answer = await self.book(request)
        record = BookingRecord(
            booking=request.event_id,
            courier=request.courier,
            leg=request.leg,
            coi=request.coi,
            shipment_id=request.shipment_id,
            temperature_class=request.temperature_class,
            booked_at=utcnow(),
            answer=answer,
        )
        shipper = self.runtime.partners.get(request.shipper)
        outcome, _ = await self.runtime.door.accept(
            self.adapter,
            shipper,
            record.model_dump_json().encode(),
            transport=TRANSPORT,
            content_type="application/json",
        )
        if outcome.status == "rejected":
            raise BookingNotDeclared(detail=f"{request.courier} {request.leg}: {outcome.reason}")
        log.info(
            "courier %s booked the %s leg of %s (%s)",
            request.courier,
            request.leg,
            request.coi,
            outcome.status,
        )

    async def book(self, request: Booking) -> BookingAnswer:
        """One try: the courier's answer, or the error that says what happens next."""
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Idempotency-Key": request.event_id,
            "Content-Type": "application/json",
        }
        try:
            response = await self.client.post(
                f"{self.api_url}/shipments", content=request.body, headers=headers
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"the courier's API did not answer ({type(exc).__name__})") from None
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise TransientError(f"the courier's API answered {status}")
        if status >= 300:
            raise CourierRefused(detail=f"{request.courier} answered {status}")
        try:
            return BookingAnswer.model_validate(orjson.loads(response.content))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise CourierAnswerUnreadable(detail=f"{request.courier}: {type(exc).__name__}") from None


@dataclass
class BookingRunners:
    runners: list[OutboundRunner[BookingProfile, Booking]] = field(default_factory=list)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.stop()
        for client in self.clients:
            await client.aclose()


async def start_booking(
    runtime: Runtime, adapter: Adapter, profiles: list[BookingProfile], manufacturer_of: ManufacturerOf
) -> BookingRunners:
    """One destination a courier with a booking profile; its queue is bound before it returns."""
    running = BookingRunners()
    production = runtime.settings.env == "production"
    for profile in profiles:
        url = profile.api.url.resolve(production)
        if not url:
            log.info("courier booking with %s is off: %s is not set", profile.courier, profile.api.url.env)
            continue
        if not url.startswith(("https://", "http://")):
            raise ConfigError(
                f"courier booking for {profile.courier}: {profile.api.url.env} is not an http(s) URL"
            )
        key = profile.api.key.resolve(production)
        if not key:
            raise ConfigError(f"courier booking for {profile.courier}: {profile.api.key.env} is not set")
        client = httpx.AsyncClient(timeout=httpx.Timeout(profile.api.timeout_seconds))
        running.clients.append(client)
        retry = Retry(
            tries=profile.api.attempts,
            deliveries=runtime.settings.consumer_delivery_limit,
            backoff=profile.api.backoff_seconds,
            max_backoff=profile.api.max_backoff_seconds,
        )
        destination = Destination(
            f"{ADAPTER}.{profile.courier}",
            runtime.partners.get(profile.courier),
            ADAPTER,
            profile,
            tuple(LEG_DUE),
            retry,
            prospective=True,
        )
        outbound = CourierBooking(runtime, adapter, url.rstrip("/"), key, client, manufacturer_of)
        runner = OutboundRunner(runtime, destination, outbound)
        try:
            await runner.open()  # bound before the first leg can fall due
        except TransientError:
            runner.start()  # the broker is down: consume once it is up (the gateway still starts)
        running.runners.append(runner)
    return running
