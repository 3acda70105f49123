"""Courier booking, pure: what is booked for each leg from the courier's own view, what is not,
and the booking profile checked at start-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import yaml

from adapters.couriers.booking.adapter import CourierBookingAdapter
from adapters.couriers.booking.profile import BookingProfile, booking_profiles
from adapters.couriers.booking.render import render_booking
from gateway.canonical.command import Command
from gateway.canonical.ids import ExternalRef
from gateway.canonical.order import (
    Collection,
    Party,
    PatientIdentity,
    Product,
    Shipment,
    ShipmentDirection,
    TherapyOrder,
)
from gateway.errors import ConfigError, NotPermitted
from gateway.identity.disclosure import disclose, load_disclosure
from gateway.partners import load_partners
from gateway.ports import OrderView
from gateway.settings import Settings
from tests.support.builders import T0, status_event

SETTINGS = Settings(env="test")
PARTNERS = load_partners(SETTINGS.partners_file, env="test")
PROFILES = booking_profiles()
PROFILES.load(SETTINGS)
PROFILE = PROFILES.for_partner(PARTNERS.get("demo-courier"))
COURIER = PARTNERS.get("demo-courier")
PATIENT = ("Invented", "Ivy", "MRN-424242", "1971-03-04", "19710304")

ORDER = TherapyOrder(
    order_id="o-1",
    coi="CHA999926ABC123",
    patient_id="p-1",
    patient=PatientIdentity(family_name="Invented", given_name="Ivy", birth_date="1971-03-04", sex="F"),
    product=Product(code="S1234"),
    ordering_site=Party(id="demo-hospital"),
    collection=Collection(scheduled_start=T0, din="A999914123458"),
    notes="call Ivy Invented the day before",
    created_at=T0,
    updated_at=T0,
)
REFS = (
    ExternalRef(namespace="site:demo-hospital:mrn", value="MRN-424242"),
    ExternalRef(namespace="coi", value="CHA999926ABC123"),
)


def courier_view(order: TherapyOrder = ORDER) -> OrderView:
    """The view the runner hands the render: the courier's disclosure profile's."""
    shown, refs = disclose(order, REFS, COURIER, load_disclosure(SETTINGS.disclosure_dir, PARTNERS))
    return OrderView(shown, refs)


def maker(product: Product) -> str | None:
    return "demo-manufacturer" if product.code == "S1234" else None


@pytest.mark.parametrize("due", ["collection.scheduled", "manufacturing.released"])
def test_every_booking_carries_the_chain_of_identity_and_nothing_of_the_patient(due: str) -> None:
    assert PROFILE is not None
    booking = render_booking(status_event(due), courier_view(), PROFILE, maker)
    assert booking is not None
    body = orjson.loads(booking.body)
    assert body["labels"] == {"coi": "CHA999926ABC123", "din": "A999914123458"}
    assert [word for word in PATIENT if word.upper() in booking.body.decode().upper()] == []
    assert set(body) == {"reference", "leg", "service", "temperature_class", "pickup", "delivery", "labels"}


def test_the_windows_count_from_the_legs_start() -> None:
    assert PROFILE is not None
    inbound = render_booking(status_event("collection.scheduled"), courier_view(), PROFILE, maker)
    released = T0 + timedelta(days=20)
    outbound = render_booking(
        status_event("manufacturing.released", time=released), courier_view(), PROFILE, maker
    )
    assert inbound is not None and outbound is not None
    assert orjson.loads(inbound.body)["pickup"]["window"]["start"] == "2026-11-02T13:00:00Z"
    assert orjson.loads(outbound.body)["pickup"]["window"]["start"] == "2026-11-23T09:00:00Z"
    assert (inbound.shipper, outbound.shipper) == ("demo-hospital", "demo-manufacturer")


def test_nothing_is_booked_twice_nor_for_a_shipper_or_event_it_does_not_book() -> None:
    assert PROFILE is not None
    declared = Shipment(shipment_id="S-1", direction=ShipmentDirection.to_manufacturer, courier="other")
    already = ORDER.model_copy(update={"shipments": (declared,)})
    assert render_booking(status_event("collection.scheduled"), courier_view(already), PROFILE, maker) is None
    elsewhere = ORDER.model_copy(update={"ordering_site": Party(id="another-hospital")})
    assert (
        render_booking(status_event("collection.scheduled"), courier_view(elsewhere), PROFILE, maker) is None
    )
    unassigned = ORDER.model_copy(update={"product": Product(code="S0000")})
    assert (
        render_booking(status_event("collection.scheduled"), courier_view(unassigned), PROFILE, maker) is None
    )
    assert render_booking(status_event("collection.completed"), courier_view(), PROFILE, maker) is None


def _profile_dir(tmp_path: Path, change: dict[str, object]) -> Settings:
    document = yaml.safe_load((SETTINGS.mappings_dir / "couriers/booking/demo-courier.yaml").read_text())
    document.update(change)
    (tmp_path / "demo-courier.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return Settings(env="test", profile_dirs={"couriers/booking": tmp_path})


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"legs": {"inbound": {"shippers": ["demo-hospital"], "temperature_class": "warm"}}}, "legs.inbound"),
        ({"places": {}}, "shipper 'demo-hospital' has no entry in places"),
        ({"courier": "demo-manufacturer"}, "courier: demo-manufacturer is not a courier"),
        (
            {
                "legs": {
                    "inbound": {
                        **PROFILE.legs["inbound"].model_dump(mode="json"),
                        "shippers": ["demo-manufacturer"],
                    }
                }
            }
            if PROFILE
            else {},
            "legs.inbound.shippers: 'demo-manufacturer' is not a site",
        ),
    ],
)
def test_a_bad_booking_profile_refuses_to_start_naming_the_file_and_the_field(
    tmp_path: Path, change: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        CourierBookingAdapter().configure(_profile_dir(tmp_path, change), PARTNERS)
    assert "demo-courier.yaml" in str(refused.value) and named in str(refused.value)


def test_the_shipped_profile_is_valid() -> None:
    assert isinstance(PROFILE, BookingProfile) and set(PROFILE.legs) == {"inbound", "outbound"}


def test_a_shipper_binds_only_the_tracking_number_of_the_shipment_it_books() -> None:
    def booking(*refs: ExternalRef, tracking: str = "DC1") -> Command:
        shipment = {
            "shipment_id": "S-1",
            "direction": "to_manufacturer",
            "courier": "demo-courier",
            "tracking_number": tracking,
        }
        return Command.model_validate(
            {"event": "shipment.booked", "refs": list(refs), "payload": {"shipment": shipment}}
        )

    site = PARTNERS.get("demo-hospital")
    its = ExternalRef(namespace="courier:demo-courier:tracking", value="DC1")
    site.check_commands([booking(REFS[1], its)])
    for other in (
        ExternalRef(namespace="courier:demo-courier:tracking", value="DC2"),
        ExternalRef(namespace="courier:demo-lab-courier:tracking", value="DC1"),
        ExternalRef(namespace="courier:demo-courier:logger", value="DC1"),
    ):
        with pytest.raises(NotPermitted):
            site.check_commands([booking(REFS[1], other)])
