"""What became of one inbound message: the answer every dialect renders its acknowledgement from."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from gateway.errors import GatewayError, RejectedMessage

Status = Literal["applied", "quarantined", "rejected", "ignored"]


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Status
    inbound_id: str | None  # None when nothing of the message was stored (ignored)
    partner: str
    message_id: str | None = None
    order_id: str | None = None
    coi: str | None = None
    event_ids: tuple[str, ...] = ()
    order_ids: tuple[str | None, ...] = ()  # beside event_ids: the order of each (None: a patient's)
    error: str | None = None  # the error class, e.g. "UnknownIdentity"
    reason: str | None = None  # PHI-free, fit for the partner
    location: str | None = None
    code: str | None = None
    http_status: int = 201
    duplicate: bool = False

    @classmethod
    def of_error(
        cls,
        status: Status,
        exc: GatewayError,
        inbound_id: str,
        partner: str,
        message_id: str | None,
    ) -> Outcome:
        return cls(
            status=status,
            inbound_id=inbound_id,
            partner=partner,
            message_id=message_id,
            error=type(exc).__name__,
            reason=exc.public_message,
            location=getattr(exc, "location", None) if isinstance(exc, RejectedMessage) else None,
            code=getattr(exc, "code", None) if isinstance(exc, RejectedMessage) else None,
            http_status=exc.http_status,
        )
