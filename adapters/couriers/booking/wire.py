"""The demo courier's booking API (docs/outbound.md), the shape this adapter speaks:

    POST {api.url}/shipments
    Authorization: Bearer <key>        Idempotency-Key: <the canonical event's id>
    {"reference": COI, "leg", "service", "temperature_class",
     "pickup": {"place": {...}, "window": {"start", "end"}}, "delivery": {...},
     "labels": {"coi": COI, "din": DIN or null}}
    -> 201 (or 200 for a repeated Idempotency-Key) {"tracking_number": ..., "status": "booked", ...}

Only the chain of identity (COI, DIN), places, windows and temperature class are sent: nothing
of the patient. A courier's own API of another shape gets a wire module of its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.couriers.booking.profile import Place
from gateway.sdk import TemperatureClass


class _Sent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Window(_Sent):
    start: datetime
    end: datetime


class Stop(_Sent):
    place: Place
    window: Window


class Labels(_Sent):
    """What is printed on the shipper's label: the chain of identity, never the patient."""

    coi: str
    din: str | None = None


class BookingRequest(_Sent):
    reference: str = Field(description="the shipper's reference: the order's COI")
    leg: Literal["inbound", "outbound"]
    service: str
    temperature_class: TemperatureClass
    pickup: Stop
    delivery: Stop
    labels: Labels


class BookingAnswer(BaseModel):
    """What the courier answers; fields we do not use are let through (a courier adds to its API)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tracking_number: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
    status: str | None = None
    sscc: str | None = Field(default=None, pattern=r"^\d{18}$")
    logger_id: str | None = Field(default=None, max_length=100)
