"""A command: what an adapter makes of one inbound message, before the gateway reconciles it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import Field, SerializeAsAny, model_validator

from gateway.canonical.base import Canonical
from gateway.canonical.catalogue import Scope, spec_for
from gateway.canonical.ids import ExternalRef, IdentifierScope
from gateway.canonical.order import PatientIdentity
from gateway.canonical.payloads import PatientMerged, Payload


class Command(Canonical):
    """One canonical event to apply, with every identifier the message carried at this boundary."""

    event: str = Field(description="canonical event name, e.g. shipment.delivered")
    payload: SerializeAsAny[Payload]
    refs: tuple[ExternalRef, ...] = Field(min_length=1)
    binds: tuple[ExternalRef, ...] = Field(
        default=(),
        description="identifiers this message may newly bind to its order (a tracking number at booking)",
    )
    patient: PatientIdentity | None = Field(
        default=None, description="demographics the message carries, checked against the order's"
    )

    @model_validator(mode="before")
    @classmethod
    def _typed_payload(cls, values: Any) -> Any:
        if not isinstance(values, dict) or "event" not in values:
            return values
        try:
            spec = spec_for(values["event"])
        except KeyError as exc:
            raise ValueError(str(exc)) from None
        if spec.scope is Scope.gateway:
            raise ValueError(f"{spec.name} is the gateway's own event; no partner sends it")
        payload = values.get("payload")
        if payload is not None and not isinstance(payload, spec.payload):
            values = {**values, "payload": spec.payload.model_validate(payload)}
        return values

    @model_validator(mode="after")
    def _binds_are_carried(self) -> Command:
        missing = set(self.binds) - set(self.refs)
        if missing:
            raise ValueError("every identifier in binds must also be in refs")
        if isinstance(self.payload, PatientMerged):
            if set(self.payload.prior) - set(self.refs):
                raise ValueError("every prior identifier of a merge must also be in refs")
            if any(r.scope is not IdentifierScope.patient for r in self.refs):
                raise ValueError("a merge carries patient identifiers only")
        return self

    @property
    def scope(self) -> Scope:
        return spec_for(self.event).scope


def fingerprint(commands: Iterable[Command], *, timeless: bool = False) -> bytes:
    """What commands say, as canonical JSON (keys sorted, values in their one JSON form): the
    fingerprint of a message whose meaning is its commands, whatever its key order, spacing or
    time-zone notation. `timeless`: without their `occurred_at`, for a record the gateway writes
    of a partner's answer (a booking), stamped when it was written: the same answer written again
    after a crash is the same message."""
    dumped = [c.model_dump(mode="json") for c in commands]
    if timeless:
        for command in dumped:
            command["payload"].pop("occurred_at", None)
    return orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)
