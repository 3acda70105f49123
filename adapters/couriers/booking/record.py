"""The booking as the gateway keeps it: what it asked and what the courier answered, one JSON
document, handed through the door as the raw message of a `shipment.booked` (decode maps it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from adapters.couriers.booking.wire import BookingAnswer
from gateway.sdk import (
    COI_NAMESPACE,
    Command,
    Decoded,
    ExternalRef,
    MalformedMessage,
    PartnerKind,
    TemperatureClass,
    fingerprint,
    validate_coi,
)


class BookingRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    booking: str = Field(
        min_length=1, max_length=100, description="the canonical event that made the leg due"
    )
    courier: str = Field(min_length=1, max_length=100)
    leg: Literal["inbound", "outbound"]
    coi: Annotated[str, AfterValidator(validate_coi)]
    shipment_id: str = Field(min_length=1, max_length=100)
    temperature_class: TemperatureClass
    booked_at: datetime = Field(description="when the courier answered")
    answer: BookingAnswer

    @property
    def tracking(self) -> ExternalRef:
        prefix = PartnerKind.courier.namespace_prefix
        return ExternalRef(namespace=f"{prefix}:{self.courier}:tracking", value=self.answer.tracking_number)

    def command(self) -> Command:
        """`shipment.booked`, binding the courier's tracking number to the order."""
        direction = "to_manufacturer" if self.leg == "inbound" else "to_site"
        shipment: dict[str, Any] = {
            "shipment_id": self.shipment_id,
            "direction": direction,
            "courier": self.courier,
            "tracking_number": self.answer.tracking_number,
            "temperature_class": self.temperature_class,
            "sscc": self.answer.sscc,
            "logger_id": self.answer.logger_id,
        }
        return Command.model_validate(
            {
                "event": "shipment.booked",
                "refs": [ExternalRef(namespace=COI_NAMESPACE, value=self.coi), self.tracking],
                "binds": [self.tracking],
                "payload": {"occurred_at": self.booked_at, "shipment": shipment},
            }
        )


def read_record(raw: bytes) -> Decoded:
    try:
        record = BookingRecord.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage("the booking record is not JSON", detail=str(exc)) from None
    except ValidationError as exc:
        where = "/" + "/".join(str(p) for p in exc.errors()[0]["loc"])
        raise MalformedMessage(f"the booking record is incomplete (at {where})", location=where) from None
    command = record.command()
    # When the courier answered is not what the booking says: the same booking answered again
    # after a crash (the same idempotency key, the same tracking number) is the same message.
    return Decoded(f"booking-{record.booking}", (command,), fingerprint=fingerprint([command], timeless=True))
