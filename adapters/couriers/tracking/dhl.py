"""DHL Shipment Tracking - Unified API responses (`shipments[].events[]`), for polling: one event
an entry of `events`, its `statusCode` the code (pre-transit, transit, delivered, failure,
unknown). `status` and `description` are free text and decide nothing. An answer of several
pages (`offset`/`limit`) links the next by `nextUrl`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.couriers.tracking.events import TrackEvent, aware, malformed, place, text


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Address(_Wire):
    addressLocality: str | None = None
    postalCode: str | None = None
    countryCode: str | None = None


class Place(_Wire):
    address: Address | None = None

    def text(self) -> str | None:
        a = self.address
        return place(a.addressLocality, a.postalCode, a.countryCode) if a else None


class Event(_Wire):
    timestamp: datetime
    statusCode: str = Field(min_length=1, max_length=30)
    status: str | None = None
    description: str | None = None
    location: Place | None = None


class Signer(_Wire):
    name: str | None = None


class Proof(_Wire):
    signed: Signer | None = None


class Reference(_Wire):
    number: str = ""
    type: str = ""


class Details(_Wire):
    proofOfDelivery: Proof | None = None
    references: Reference | list[Reference] | None = None


class Shipment(_Wire):
    id: str | int
    estimatedTimeOfDelivery: datetime | None = None
    details: Details | None = None
    events: list[Event] = []


class Unified(_Wire):
    shipments: list[Shipment] = []


def _references(details: Details | None) -> tuple[tuple[str, str], ...]:
    given = details.references if details else None
    listed = given if isinstance(given, list) else [given] if given else []
    return tuple((r.type, r.number.strip()) for r in listed if r.number.strip())


def unified(document: Any) -> list[TrackEvent]:
    try:
        body = document.get("trackingResponse", document) if isinstance(document, dict) else document
        answer = Unified.model_validate(body)
    except ValidationError as exc:
        raise malformed(exc, "a DHL unified tracking response") from None
    found: list[TrackEvent] = []
    for s, shipment in enumerate(answer.shipments):
        sent = body["shipments"][s]["events"]
        proof = shipment.details.proofOfDelivery if shipment.details else None
        signer = proof.signed.name if proof and proof.signed else None
        for e, event in enumerate(shipment.events):
            found.append(
                TrackEvent(
                    carrier="dhl",
                    tracking_number=str(shipment.id).strip(),
                    codes={"status_code": event.statusCode},
                    carrier_code=event.statusCode,
                    occurred_at=aware(event.timestamp),
                    location=event.location.text() if event.location else None,
                    signed_by=text(signer) if event.statusCode == "delivered" else None,
                    expected_delivery=aware(shipment.estimatedTimeOfDelivery),
                    note=text(event.status or event.description, 500),
                    references=_references(shipment.details),
                    source=sent[e],
                )
            )
    return found


def next_page(document: Any) -> str | None:
    """The next page's URL (relative to the API's), when the answer is one page of several: a
    `nextUrl` that is not this page's own `url` (the last page may link to itself)."""
    if not isinstance(document, dict):
        return None
    body = document.get("trackingResponse", document)
    if not isinstance(body, dict):
        return None
    found, own = body.get("nextUrl"), body.get("url")
    return found if isinstance(found, str) and found and found != own and body.get("shipments") else None
