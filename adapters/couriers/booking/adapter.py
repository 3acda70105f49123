"""The courier-booking adapter: books due shipment legs with couriers' APIs (outbound.py) and
declares each booked shipment through the door. Its inbound side reads only its own booking
records (record.py): the courier's answer with what was asked, kept raw like every message.

Profiles: `mappings/couriers/booking/<courier>.yaml` (profile.py), loaded and checked at start-up:
a profile of a partner that is not a courier, or a shipper that is not a registered partner of
the leg's kind, refuses to start naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adapters.couriers.booking.outbound import ADAPTER, BookingRunners, start_booking
from adapters.couriers.booking.profile import booking_profiles
from adapters.couriers.booking.record import read_record
from gateway.sdk import (
    Assignments,
    ConfigError,
    Decoded,
    Example,
    InboundContext,
    NotAuthenticated,
    Outcome,
    PartnerKind,
    Partners,
    Runtime,
    Settings,
    examples_in,
    load_assignments,
    outcome_json,
)

EXAMPLES = Path(__file__).parent / "examples"
SHIPPER_KIND = {"inbound": PartnerKind.site, "outbound": PartnerKind.manufacturer}


class CourierBookingAdapter:
    name = ADAPTER
    dialect = "courier booking (the gateway's bookings with couriers' APIs)"
    content_type = "application/json"
    partner_kinds = (PartnerKind.site, PartnerKind.manufacturer)  # the shippers it books for

    def __init__(self) -> None:
        self.profiles = booking_profiles()
        self.assignments = Assignments()

    def configure(self, settings: Settings, partners: Partners) -> None:
        self.profiles.load(settings)
        self.assignments = load_assignments(settings.assignments_file, partners)
        directory = self.profiles.directory_for(settings)
        for name, profile in self.profiles.by_name().items():
            where = f"courier-booking profile {directory / name}.yaml"
            try:
                courier = partners.get(profile.courier)
            except NotAuthenticated:
                raise ConfigError(f"{where}: courier: no partner {profile.courier!r}") from None
            if courier.kind is not PartnerKind.courier:
                raise ConfigError(f"{where}: courier: {profile.courier} is not a courier")
            if self.profiles.for_partner(courier) is None:
                raise ConfigError(f"{where}: the file is not named after the courier's profile")
            for leg, rule in profile.legs.items():
                for shipper in rule.shippers:
                    known = next((p for p in partners if p.id == shipper), None)
                    if known is None or known.kind is not SHIPPER_KIND[leg]:
                        kind = SHIPPER_KIND[leg].value
                        raise ConfigError(f"{where}: legs.{leg}.shippers: {shipper!r} is not a {kind}")

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        return read_record(raw)

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        return outcome_json(outcome)

    def examples(self) -> Sequence[Example]:
        return examples_in(EXAMPLES, "*.json")

    async def start_transport(self, runtime: Runtime) -> BookingRunners:
        if self.profiles.directory is None:  # made after start-up's configure(): load now
            self.configure(runtime.settings, runtime.partners)
        return await start_booking(runtime, self, self.profiles.all(), self.assignments.manufacturer_of)


adapter = CourierBookingAdapter()
