"""EasyPost webhook Events about trackers (`tracker.created`, `tracker.updated`): the tracker's
current `status` / `status_detail` is the event; its `tracking_details` are its history, already
told. Other EasyPost events (batches, invoices, refunds...) are not ours."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.couriers.tracking.events import TrackEvent, aware, compact, malformed, place, text
from gateway.sdk import NotOurs

TRACKER_EVENTS = frozenset({"tracker.created", "tracker.updated"})


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Where(_Wire):
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None


class Detail(_Wire):
    at: datetime | None = Field(default=None, alias="datetime")
    status: str | None = None
    status_detail: str | None = None
    message: str | None = None
    tracking_location: Where | None = None


class Tracker(_Wire):
    tracking_code: str = Field(min_length=1, max_length=100)
    status: str = Field(min_length=1, max_length=40)
    status_detail: str | None = Field(default=None, max_length=60)
    signed_by: str | None = None
    est_delivery_date: datetime | None = None
    updated_at: datetime | None = None
    tracking_details: list[Detail] = []


class Event(_Wire):
    id: str = Field(min_length=1, max_length=200)
    object: str
    description: str = Field(max_length=100)
    result: dict[str, Any] | None = None


def event(document: Any) -> tuple[str, TrackEvent] | NotOurs:
    """The Event's id (the idempotency key: EasyPost sends a retry under the same id) and its
    tracker's current status."""
    try:
        envelope = Event.model_validate(document)
    except ValidationError as exc:
        raise malformed(exc, "an EasyPost Event") from None
    if envelope.object != "Event" or envelope.description not in TRACKER_EVENTS:
        return NotOurs("not_a_tracker_event", detail=f"EasyPost {envelope.description}")
    try:
        tracker = Tracker.model_validate(envelope.result)
    except ValidationError as exc:
        raise malformed(exc, "an EasyPost Tracker", "/result") from None
    latest = tracker.tracking_details[-1] if tracker.tracking_details else None
    here = latest.tracking_location if latest else None
    codes = {"status": tracker.status}
    if tracker.status_detail:
        codes["status_detail"] = f"{tracker.status}/{tracker.status_detail}"
    found = TrackEvent(
        carrier="easypost",
        tracking_number=tracker.tracking_code.strip(),
        codes=codes,
        carrier_code=compact(tracker.status, tracker.status_detail),
        occurred_at=aware(latest.at if latest and latest.at else tracker.updated_at),
        location=place(here.city, here.state, here.zip, here.country) if here else None,
        signed_by=text(tracker.signed_by),
        expected_delivery=aware(tracker.est_delivery_date),
        note=text(latest.message if latest else None, 500),
    )
    return envelope.id, found
