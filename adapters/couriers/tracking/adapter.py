"""The carrier-tracking dialect: carriers' and aggregators' tracking events -> canonical shipment
events, one dialect for every carrier shape, chosen per partner by its profile
(mappings/couriers/tracking/<partner>.yaml, `shape`: ups, fedex, dhl, easypost, aftership,
shippo).

Webhooks: POST /couriers/{partner}/tracking (Standard Webhooks), and
POST /couriers/{partner}/tracking/vendor-hmac for partners that sign with a vendor's HMAC header
(EasyPost's `X-Hmac-Signature`). Polling (adapters.couriers.tracking.poller) hands each event it
fetched to the same door, transport `poll`, as the event's neutral form (events.TrackEvent).
docs/couriers-tracking.md tells the whole of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson
from fastapi import APIRouter
from pydantic import ValidationError

from adapters.couriers.tracking.codes import CodeTable, load_tables
from adapters.couriers.tracking.events import TrackEvent, malformed
from adapters.couriers.tracking.mapping import UnknownStatusCode, command_for, tracking_namespace
from adapters.couriers.tracking.profile import TrackingProfile
from adapters.couriers.tracking.shapes import SHAPES
from gateway.sdk import (
    EASYPOST,
    ConfigError,
    Decoded,
    Example,
    ExternalRef,
    GatewayError,
    InboundContext,
    MalformedMessage,
    NotOurs,
    Outcome,
    Partner,
    PartnerKind,
    Partners,
    Profiles,
    Running,
    Runtime,
    Settings,
    StandardWebhooks,
    UnsupportedMessage,
    WebhookRoute,
    examples_in,
    fingerprint,
    outcome_json,
    webhook_router,
)

EXAMPLES = Path(__file__).parent / "examples"
POLL = "poll"  # the transport of polled events


class CarrierTracking:
    name = "carrier-tracking"
    dialect = "carrier tracking (UPS, FedEx, DHL, EasyPost, AfterShip, Shippo)"
    content_type = "application/json"
    partner_kinds = (PartnerKind.courier,)

    def __init__(self, tables: dict[str, CodeTable]) -> None:
        self.tables = tables
        self.profiles: Profiles[TrackingProfile] = Profiles(
            TrackingProfile, "couriers/tracking", dialect=self.name, partner_of=lambda p: p.partner
        )

    def configure(self, settings: Settings, partners: Partners) -> None:
        """Every partner speaking this dialect has a profile, whose shape has a code table."""
        self.profiles.load(settings)
        for partner in partners:
            if not partner.speaks(self.name):
                continue
            profile = self.profiles.for_partner(partner)
            if profile is None:
                raise ConfigError(
                    f"{self.name}: partner {partner.id} has no profile in {self.profiles.directory}"
                )
            if SHAPES[profile.shape].carrier not in self.tables:
                raise ConfigError(f"{self.name}: no status code table for {profile.shape}")

    def profile(self, partner: Partner) -> TrackingProfile:
        found = self.profiles.for_partner(partner)
        if found is None:
            raise ConfigError(f"{self.name}: partner {partner.id} has no profile")
        return found

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        profile = self.profile(ctx.partner)
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedMessage("the body is not JSON", detail=str(exc)) from None
        if ctx.transport == POLL:
            try:
                event = TrackEvent.model_validate(document)
            except ValidationError as exc:
                raise malformed(exc, "a polled tracking event") from None
            return self.decoded(event.key, event, ctx.partner, profile)
        shape = SHAPES[profile.shape]
        if shape.webhook is None:
            refused = UnsupportedMessage(f"{profile.shape} tracking is polled by the gateway, not sent to it")
            return Decoded(error=refused)
        read = shape.webhook(document)
        if isinstance(read, NotOurs):
            return Decoded(error=read)
        given_id, event = read
        return self.decoded(given_id or event.key, event, ctx.partner, profile)

    def decoded(
        self, message_id: str, event: TrackEvent, partner: Partner, profile: TrackingProfile
    ) -> Decoded:
        # A parcel no shipment was declared for (an account-wide subscription sends every parcel's)
        # is not the gateway's business, unless the event echoes a COI or DIN: reconciliation must
        # see that one.
        labelled = any(kind in profile.references for kind, _ in event.references)
        parcel = ExternalRef(namespace=tracking_namespace(partner), value=event.tracking_number)
        scope = () if labelled else (parcel,)
        try:
            command = command_for(event, self.tables[event.carrier], partner, profile)
        except GatewayError as exc:
            return Decoded(message_id, error=exc, content=event, ours_if_known=scope)
        return Decoded(
            message_id, (command,), fingerprint=fingerprint([command]), content=event, ours_if_known=scope
        )

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        unknown = decoded.error if decoded is not None else None
        if isinstance(unknown, UnknownStatusCode) and outcome.status == "rejected" and outcome.inbound_id:
            unknown.report()  # once a kept message: answering it is the moment it was stored
        return outcome_json(outcome)

    def examples(self) -> Sequence[Example]:
        return examples_in(EXAMPLES, "*.json")

    def http_routes(self) -> APIRouter:
        return webhook_router(
            self,
            WebhookRoute("/couriers/{partner}/tracking", StandardWebhooks()),
            WebhookRoute("/couriers/{partner}/tracking/vendor-hmac", EASYPOST),
        )

    async def start_transport(self, runtime: Runtime) -> Running:
        from adapters.couriers.tracking.poller import TrackingPoller

        return await TrackingPoller.for_runtime(runtime, self, self.profiles, self.tables).start()


adapter = CarrierTracking(load_tables())
