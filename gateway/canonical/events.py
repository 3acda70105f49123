"""Build the CloudEvents the gateway publishes: data checked against its event's contract, then wrapped."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.canonical.catalogue import spec_for
from gateway.canonical.envelope import CloudEvent, new_event_id
from gateway.canonical.order import TherapyOrder
from gateway.canonical.payloads import Payload


def source_of(partner: str, adapter: str) -> str:
    return f"/partners/{partner}/{adapter}"


def envelope(
    name: str, data: dict[str, Any], *, source: str, subject: str | None, time: datetime
) -> CloudEvent:
    """Validate `data` against the event's contract and wrap it."""
    spec = spec_for(name)
    model = spec.data.model_validate(data)
    return CloudEvent(
        id=new_event_id(),
        source=source,
        type=spec.type,
        subject=subject,
        time=time,
        dataschema=spec.dataschema,
        data=model.model_dump(mode="json", exclude_none=True),
    )


# A site's free text may name anyone: it stays in the site's view of the order (its profile lists
# `notes`) and is never published, since every kind of partner consumes the events (docs/disclosure.md).
UNPUBLISHED: dict[str, Any] = {"order": {"notes"}, "changes": {"notes"}}


def order_event(
    name: str, order: TherapyOrder, payload: Payload, *, source: str, time: datetime
) -> CloudEvent:
    data = {
        **payload.model_dump(exclude_none=True, exclude=UNPUBLISHED),
        "order_id": order.order_id,
        "coi": order.coi,
        "patient_id": order.patient_id,
        "status": order.status,
    }
    return envelope(name, data, source=source, subject=order.coi, time=time)
