"""A courier's booking profile (`mappings/couriers/booking/<courier>.yaml`): its API, the places it
collects from and delivers to, and which shippers' legs it books, with their time windows and
temperature class. Data, loaded and checked at start-up (gateway.sdk.Profiles)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.sdk import Profiles, SecretRef, TemperatureClass

Leg = Literal["inbound", "outbound"]
FOLDER = "couriers/booking"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Api(_Model):
    """The courier's REST API: `POST {url}/shipments`, a bearer key, an idempotency key. No URL
    (its variable unset, no default): the gateway books nothing with this courier."""

    url: SecretRef = Field(description="read from the environment variable it names")
    key: SecretRef
    timeout_seconds: float = Field(default=10.0, gt=0)
    attempts: int = Field(default=3, ge=1, description="tries within one delivery")
    backoff_seconds: float = Field(default=1.0, ge=0)
    max_backoff_seconds: float = Field(default=60.0, ge=0)


class Place(_Model):
    """Where a shipment is collected or delivered: an organisation's desk, never a person's home."""

    name: str = Field(min_length=1, max_length=200)
    street: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    phone: str | None = Field(default=None, max_length=40, description="the desk's, for the driver")


class LegRule(_Model):
    """Which shippers' legs the courier books, and how: windows count from the leg's start (the
    collection's scheduled start for the inbound leg, the release for the outbound one)."""

    shippers: tuple[str, ...] = Field(min_length=1, description="partner ids whose legs it books")
    temperature_class: TemperatureClass
    service: str = Field(default="clinical", min_length=1, max_length=50)
    pickup_after: timedelta = Field(ge=timedelta(0))
    pickup_window: timedelta = Field(gt=timedelta(0))
    deliver_within: timedelta = Field(gt=timedelta(0), description="from the pickup window's start")


class BookingProfile(_Model):
    courier: str = Field(min_length=1, description="the courier's partner id")
    api: Api
    places: dict[str, Place] = Field(description="by party id: a partner's, or a collection site's")
    legs: dict[Leg, LegRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _every_shipper_has_a_place(self) -> BookingProfile:
        for leg, rule in self.legs.items():
            for shipper in rule.shippers:
                if shipper not in self.places:
                    raise ValueError(f"legs.{leg}: shipper {shipper!r} has no entry in places")
        return self


def booking_profiles() -> Profiles[BookingProfile]:
    return Profiles(BookingProfile, FOLDER, dialect="courier-booking", partner_of=lambda p: p.courier)
