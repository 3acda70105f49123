"""A REST MES's answer to a manufacturing order, when it decides at once (docs/outbound.md):

    {"decision": "accepted" | "rejected", "order_number": "...", "reason": "...",
     "slot": {"id": "...", "start": "..."}}          every field optional

taken through the door as the manufacturer's message: `order.accepted` (binding its order number
as `mes:<id>:order`) or `order.rejected`, and `slot.confirmed` (binding `mes:<id>:slot`). An answer
that decides nothing (a bare 202) is not a message. The raw message kept is the answer with the
order it answers (`AnswerRecord`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from gateway.sdk import (
    COI_NAMESPACE,
    Command,
    Decoded,
    ExternalRef,
    MalformedMessage,
    NotOurs,
    PartnerKind,
    fingerprint,
    validate_coi,
)

Identifier = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]


class Slot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: Identifier
    start: datetime | None = None


class MesAnswer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    decision: Literal["accepted", "rejected"] | None = None
    order_number: Identifier | None = None
    reason: str | None = Field(default=None, max_length=500)
    slot: Slot | None = None


class AnswerRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    order: str = Field(min_length=1, max_length=100, description="the canonical event the order was sent for")
    manufacturer: str = Field(min_length=1, max_length=100)
    coi: Annotated[str, AfterValidator(validate_coi)]
    answered_at: datetime
    answer: MesAnswer

    def _ref(self, kind: str, value: str) -> ExternalRef:
        prefix = PartnerKind.manufacturer.namespace_prefix
        return ExternalRef(namespace=f"{prefix}:{self.manufacturer}:{kind}", value=value)

    def _command(self, event: str, payload: dict[str, Any], bound: ExternalRef | None) -> Command:
        binds = [bound] if bound else []
        return Command.model_validate(
            {
                "event": event,
                "refs": [ExternalRef(namespace=COI_NAMESPACE, value=self.coi), *binds],
                "binds": binds,
                "payload": {"occurred_at": self.answered_at, **payload},
            }
        )

    def commands(self) -> list[Command]:
        answer, maker = self.answer, {"id": self.manufacturer}
        number = self._ref("order", answer.order_number) if answer.order_number else None
        out: list[Command] = []
        if answer.decision == "accepted":
            out.append(self._command("order.accepted", {"accepted_by": maker}, number))
        elif answer.decision == "rejected":
            out.append(self._command("order.rejected", {"reason": answer.reason}, number))
        if answer.slot is not None:
            slot = {"manufacturer": maker, "slot_id": answer.slot.id, "slot_start": answer.slot.start}
            out.append(self._command("slot.confirmed", slot, self._ref("slot", answer.slot.id)))
        return out


def read_answer(raw: bytes) -> Decoded:
    try:
        record = AnswerRecord.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage("the answer record is not JSON", detail=str(exc)) from None
    except ValidationError as exc:
        where = "/" + "/".join(str(p) for p in exc.errors()[0]["loc"])
        raise MalformedMessage(f"the answer record is incomplete (at {where})", location=where) from None
    message_id = f"mes-order-{record.order}"
    commands = record.commands()
    if not commands:
        return Decoded(message_id, error=NotOurs("no_decision", detail="the answer decides nothing"))
    return Decoded(message_id, tuple(commands), fingerprint=fingerprint(commands, timeless=True))
