"""UPS: Track Alert webhooks (one `TrackingEvent` a request) and Track API v1 responses
(`trackResponse.shipment[].package[].activity[]`, for polling). Status codes stay strings:
`descriptionCode` "021" is not the number 21 (nor octal 17)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.couriers.tracking.events import TrackEvent, compact, malformed, place, text, yyyymmdd


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Location(_Wire):
    city: str | None = None
    stateProvince: str | None = None
    postalCode: str | None = None
    country: str | None = None
    countryCode: str | None = None

    def text(self) -> str | None:
        return place(self.city, self.stateProvince, self.postalCode, self.country or self.countryCode)


class ActivityStatus(_Wire):
    type: str = Field(min_length=1, max_length=5)
    code: str | None = Field(default=None, max_length=5)
    description: str | None = None
    descriptionCode: str | None = Field(default=None, max_length=5)
    statusCode: str | None = Field(default=None, max_length=5)

    def codes(self) -> dict[str, str]:
        found = {"type": self.type}
        described = self.descriptionCode or self.statusCode
        if described:
            found["description_code"] = described
        return found

    def as_sent(self) -> str:
        return compact(self.type, self.code, self.descriptionCode or self.statusCode)


class TrackingEvent(_Wire):
    """Track Alert's webhook body."""

    trackingNumber: str = Field(min_length=1, max_length=100)
    activityStatus: ActivityStatus
    localActivityDate: str | None = None
    localActivityTime: str | None = None
    gmtActivityDate: str | None = None
    gmtActivityTime: str | None = None
    activityLocation: Location | None = None
    scheduledDeliveryDate: str | None = None
    receivedBy: str | None = None


def alert(document: Any) -> TrackEvent:
    try:
        event = TrackingEvent.model_validate(document)
    except ValidationError as exc:
        raise malformed(exc, "a UPS Track Alert event") from None
    status = event.activityStatus
    occurred = yyyymmdd(event.gmtActivityDate, event.gmtActivityTime)
    return TrackEvent(
        carrier="ups",
        tracking_number=event.trackingNumber.strip(),
        codes=status.codes(),
        carrier_code=status.as_sent(),
        occurred_at=occurred,
        location=event.activityLocation.text() if event.activityLocation else None,
        signed_by=text(event.receivedBy),
        expected_delivery=yyyymmdd(event.scheduledDeliveryDate),
        note=text(status.description, 500),
    )


class _Place(_Wire):
    address: Location | None = None


class Activity(_Wire):
    status: ActivityStatus
    date: str | None = None
    time: str | None = None
    gmtDate: str | None = None
    gmtTime: str | None = None
    location: _Place | None = None


class Reference(_Wire):
    number: str = ""
    type: str = ""


class Package(_Wire):
    trackingNumber: str = Field(min_length=1, max_length=100)
    activity: list[Activity] = []
    referenceNumber: list[Reference] = []


class Shipment(_Wire):
    package: list[Package] = []


class TrackResponse(_Wire):
    shipment: list[Shipment] = []


class TrackApi(_Wire):
    trackResponse: TrackResponse


def track_api(document: Any) -> list[TrackEvent]:
    """Every activity of every package of a Track API answer."""
    try:
        answer = TrackApi.model_validate(document)
    except ValidationError as exc:
        raise malformed(exc, "a UPS Track API response") from None
    found: list[TrackEvent] = []
    for s, shipment in enumerate(answer.trackResponse.shipment):
        for p, package in enumerate(shipment.package):
            refs = tuple((r.type, r.number.strip()) for r in package.referenceNumber if r.number.strip())
            sent = document["trackResponse"]["shipment"][s]["package"][p]["activity"]
            for a, activity in enumerate(package.activity):
                when = yyyymmdd(activity.gmtDate, activity.gmtTime) or yyyymmdd(activity.date, activity.time)
                address = activity.location.address if activity.location else None
                found.append(
                    TrackEvent(
                        carrier="ups",
                        tracking_number=package.trackingNumber.strip(),
                        codes=activity.status.codes(),
                        carrier_code=activity.status.as_sent(),
                        occurred_at=when,
                        location=address.text() if address else None,
                        note=text(activity.status.description, 500),
                        references=refs,
                        source=sent[a],
                    )
                )
    return found
