"""CloudEvents 1.0 envelope: the only thing the gateway ever publishes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import Field

from gateway.canonical.base import Canonical

CONTENT_TYPE = "application/cloudevents+json"


class CloudEvent(Canonical):
    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1, description="partner and adapter, e.g. /partners/demo-hospital/hl7v2")
    type: str = Field(pattern=r"^org\.cgt\.[a-z_]+\.[a-z_]+$")
    subject: str | None = Field(default=None, description="the COI of the order, when there is one")
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str
    data: dict[str, Any]

    @property
    def routing_key(self) -> str:
        return self.type.removeprefix("org.cgt.")

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, body: bytes) -> CloudEvent:
        return cls.model_validate_json(body)


def new_event_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)
