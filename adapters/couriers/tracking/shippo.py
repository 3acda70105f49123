"""Shippo Track objects: the `track_updated` webhook (`{"event": "track_updated", "data": <Track>}`),
whose `tracking_status` is the event, and the Tracks API's answer (a Track, for polling), one event
an entry of `tracking_history`. The code is `status` (PRE_TRANSIT, TRANSIT, DELIVERED, RETURNED,
FAILURE, UNKNOWN); `status_details` is free text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.couriers.tracking.events import TrackEvent, aware, malformed, place, text
from gateway.sdk import NotOurs


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Where(_Wire):
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None


class Status(_Wire):
    status: str = Field(min_length=1, max_length=30)
    status_details: str | None = None
    status_date: datetime | None = None
    location: Where | None = None


class Track(_Wire):
    tracking_number: str = Field(min_length=1, max_length=100)
    eta: datetime | None = None
    metadata: str | None = None
    tracking_status: Status | None = None
    tracking_history: list[Status] = []


class Webhook(_Wire):
    event: str = Field(max_length=100)
    data: dict[str, Any] | None = None


def _event(track: Track, status: Status, source: Any = None) -> TrackEvent:
    here = status.location
    return TrackEvent(
        carrier="shippo",
        tracking_number=track.tracking_number.strip(),
        codes={"status": status.status},
        carrier_code=status.status,
        occurred_at=aware(status.status_date),
        location=place(here.city, here.state, here.zip, here.country) if here else None,
        expected_delivery=aware(track.eta),
        note=text(status.status_details, 500),
        references=(("metadata", track.metadata.strip()),)
        if track.metadata and track.metadata.strip()
        else (),
        source=source,
    )


def webhook(document: Any) -> tuple[str | None, TrackEvent] | NotOurs:
    try:
        hook = Webhook.model_validate(document)
        if hook.event != "track_updated":
            return NotOurs("not_a_track_update", detail=f"Shippo {hook.event}")
        track = Track.model_validate(hook.data)
    except ValidationError as exc:
        raise malformed(exc, "a Shippo track update") from None
    if track.tracking_status is None:
        return NotOurs("no_tracking_status", detail="Shippo track_updated without a status")
    return None, _event(track, track.tracking_status)


def track(document: Any) -> list[TrackEvent]:
    try:
        found = Track.model_validate(document)
    except ValidationError as exc:
        raise malformed(exc, "a Shippo Track") from None
    return [
        _event(found, status, document["tracking_history"][i])
        for i, status in enumerate(found.tracking_history)
    ]
