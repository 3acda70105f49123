"""AfterShip trackings: the webhook (`{"event": "tracking_update", "msg": <tracking>}`), whose
tracking's current `tag` / `subtag` is the event, and the Trackings API's answer
(`data.tracking.checkpoints[]`, for polling), one event a checkpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.couriers.tracking.events import TrackEvent, aware, compact, malformed, place, text
from gateway.sdk import MalformedMessage, NotOurs


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Checkpoint(_Wire):
    checkpoint_time: datetime | None = None
    tag: str = Field(min_length=1, max_length=40)
    subtag: str | None = Field(default=None, max_length=40)
    message: str | None = None
    location: str | None = None
    city: str | None = None
    country_iso3: str | None = None


class Tracking(_Wire):
    tracking_number: str = Field(min_length=1, max_length=100)
    tag: str = Field(min_length=1, max_length=40)
    subtag: str | None = Field(default=None, max_length=40)
    subtag_message: str | None = None
    signed_by: str | None = None
    expected_delivery: datetime | None = None
    updated_at: datetime | None = None
    order_id: str | None = None
    custom_fields: dict[str, Any] | None = None
    checkpoints: list[Checkpoint] = []

    def references(self) -> tuple[tuple[str, str], ...]:
        given = [("order_id", self.order_id)] + [(k, v) for k, v in (self.custom_fields or {}).items()]
        return tuple((k, v.strip()) for k, v in given if isinstance(v, str) and v.strip())


class Webhook(_Wire):
    event: str = Field(max_length=100)
    event_id: str | None = Field(default=None, max_length=200)
    msg: dict[str, Any] | None = None


def _codes(tag: str, subtag: str | None) -> dict[str, str]:
    return {"tag": tag, "subtag": subtag} if subtag else {"tag": tag}


def webhook(document: Any) -> tuple[str | None, TrackEvent] | NotOurs:
    """The webhook's `event_id`, when it has one, and its tracking's current status."""
    try:
        hook = Webhook.model_validate(document)
        if hook.event != "tracking_update":
            return NotOurs("not_a_tracking_update", detail=f"AfterShip {hook.event}")
        tracking = Tracking.model_validate(hook.msg)
    except ValidationError as exc:
        raise malformed(exc, "an AfterShip tracking update") from None
    latest = tracking.checkpoints[-1] if tracking.checkpoints else None
    found = TrackEvent(
        carrier="aftership",
        tracking_number=tracking.tracking_number.strip(),
        codes=_codes(tracking.tag, tracking.subtag),
        carrier_code=compact(tracking.tag, tracking.subtag),
        occurred_at=aware(latest.checkpoint_time if latest else tracking.updated_at),
        location=place(latest.location or latest.city, latest.country_iso3) if latest else None,
        signed_by=text(tracking.signed_by) if tracking.tag == "Delivered" else None,
        expected_delivery=aware(tracking.expected_delivery),
        note=text(tracking.subtag_message, 500),
        references=tracking.references(),
    )
    return hook.event_id, found


def tracking(document: Any) -> list[TrackEvent]:
    """Every checkpoint of a Trackings API answer (`{"data": {"tracking": ...}}`)."""
    try:
        sent = document["data"]["tracking"]
        found = Tracking.model_validate(sent)
    except (TypeError, KeyError):
        raise MalformedMessage("the body is not an AfterShip tracking", location="/data/tracking") from None
    except ValidationError as exc:
        raise malformed(exc, "an AfterShip tracking", "/data/tracking") from None
    return [
        TrackEvent(
            carrier="aftership",
            tracking_number=found.tracking_number.strip(),
            codes=_codes(point.tag, point.subtag),
            carrier_code=compact(point.tag, point.subtag),
            occurred_at=aware(point.checkpoint_time),
            location=place(point.location or point.city, point.country_iso3),
            signed_by=text(found.signed_by) if point.tag == "Delivered" else None,
            note=text(point.message, 500),
            references=found.references(),
            source=sent["checkpoints"][i],
        )
        for i, point in enumerate(found.checkpoints)
    ]
