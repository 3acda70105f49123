"""The lab courier's webhook payload, as it sends it: Standard Webhooks' recommended shape
(`type`, `timestamp`, `data`) and an `id` of its own. Fields we do not use are allowed and passed
over, so that the courier may add some without breaking us."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class CourierEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, max_length=200)  # the courier's event id: our idempotency key
    type: str = Field(pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$", max_length=100)
    timestamp: AwareDatetime
    data: dict[str, Any]


class SampleData(BaseModel):
    """`data` of a sample's events: the bag's COI (from its label) and the shipment the site booked."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    coi: str = Field(min_length=1, max_length=40)
    shipment_id: str = Field(min_length=1, max_length=100)
    location: str | None = Field(default=None, max_length=200)
    handed_to: str | None = Field(default=None, max_length=200)
    expected_delivery: datetime | None = None
