"""One carrier tracking event, whatever the carrier: what each shape module reads out of its
carrier's JSON, and what the poller hands to the door for each event it fetched.

`codes` are the carrier's status fields by the names its code table looks them up by
(mappings/couriers/status/<carrier>.yaml); `carrier_code` is the same values as sent, joined by
"/" from broad to specific (UPS "D/FS/011", EasyPost "in_transit/arrived_at_facility", AfterShip
"Exception/Exception_013", FedEx "DL", DHL "delivered"). `source` is the carrier's own JSON of the
event, kept with a polled event as received.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.sdk import MalformedMessage


class TrackEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    carrier: str = Field(min_length=1, max_length=50)
    tracking_number: str = Field(min_length=1, max_length=100)
    codes: dict[str, str]
    carrier_code: str = Field(min_length=1, max_length=50)
    occurred_at: datetime | None = None
    location: str | None = Field(default=None, max_length=200)
    signed_by: str | None = Field(default=None, max_length=200)
    expected_delivery: datetime | None = None
    note: str | None = Field(default=None, max_length=500)
    references: tuple[tuple[str, str], ...] = ()  # (the carrier's reference type, value)
    source: Any = None

    @property
    def key(self) -> str:
        """What tells this event from every other of the shipment: when, and which status."""
        when = self.occurred_at.astimezone(UTC).isoformat() if self.occurred_at else "-"
        return f"{self.carrier}:{self.tracking_number}:{when}:{self.carrier_code}"[:200]

    @property
    def digest(self) -> str:
        """A short digest of `key`, as the poll schedule remembers the events it took."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:20]


def place(*parts: str | None) -> str | None:
    """A location from its parts, those given, comma-separated."""
    given = [p.strip() for p in parts if p and p.strip()]
    return ", ".join(given)[:200] if given else None


def text(value: str | None, limit: int = 200) -> str | None:
    value = (value or "").strip()
    return value[:limit] or None


def compact(*codes: str | None) -> str:
    """The carrier's codes as sent, broad to specific, those given."""
    return "/".join(c for c in codes if c)[:50]


def aware(value: datetime | None) -> datetime | None:
    """A time the carrier gave without an offset is taken as UTC (their APIs say so)."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def yyyymmdd(date: str | None, time: str | None = None) -> datetime | None:
    """UPS's `YYYYMMDD` and `HHMMSS`, as UTC."""
    if not date:
        return None
    stamp = date + (time or "000000")
    try:  # by hand: strptime takes ~20 µs, a tenth of a webhook's decode
        if len(stamp) != 14 or not stamp.isascii() or not stamp.isdigit():
            raise ValueError(stamp)
        y, mo, d, h, mi, s = (
            int(stamp[i:j]) for i, j in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14))
        )
        return datetime(y, mo, d, h, mi, s, tzinfo=UTC)
    except ValueError:
        raise MalformedMessage(f"not a YYYYMMDD date and HHMMSS time: {date!r} {time!r}") from None


def pointer(exc: ValidationError, prefix: str = "") -> str:
    loc = exc.errors()[0]["loc"] if exc.errors() else ()
    return prefix + "/" + "/".join(str(p) for p in loc)


def malformed(exc: ValidationError, what: str, prefix: str = "") -> MalformedMessage:
    where = pointer(exc, prefix)
    return MalformedMessage(f"the body is not {what} (at {where})", location=where)


def newest_first(events: Iterable[TrackEvent]) -> list[TrackEvent]:
    far = datetime.min.replace(tzinfo=UTC)
    return sorted(events, key=lambda e: e.occurred_at or far, reverse=True)
