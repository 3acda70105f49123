"""The manufacturing order (on `order.placed`) and the slot request (on `collection.scheduled`)
as the gateway sends them, built from the manufacturer's own view of the order (pure).

Only what that view holds can be sent, and of the patient only the initials and the birth date
(the labels' identity check): never a name or an MRN, whatever a profile allows. Its JSON form:

    {"kind": "manufacturing_order" | "slot_request", "id": <event id>, "event", "sent_at",
     "coi", "product": {"code", "system", "name"}, "ordering_site",
     "patient": {"initials", "birth_date"}, "collection": {"scheduled_start", "site", "din"},
     "infusion": {"planned_at"}, "identifiers": [{"namespace", "value"}]}

Absent values are left out. B2MML forms: adapters.mes.orders.b2mml.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gateway.sdk import CloudEvent, OrderView

Kind = Literal["manufacturing_order", "slot_request"]
KIND: dict[str, Kind] = {"order.placed": "manufacturing_order", "collection.scheduled": "slot_request"}


class Ref(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    value: str


class ManufacturingOrder(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind
    id: str
    event: str
    sent_at: datetime
    coi: str
    product_code: str
    product_system: str
    product_name: str | None = None
    ordering_site: str
    patient_initials: str | None = None
    patient_birth_date: date | None = None
    collection_scheduled_start: datetime | None = None
    collection_site: str | None = None
    din: str | None = None
    infusion_planned_at: datetime | None = None
    identifiers: tuple[Ref, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The documented JSON shape, nested, without absent values (times in UTC, `Z`)."""
        d = self.model_dump(mode="json")
        tree: dict[str, Any] = {
            **{k: d[k] for k in ("kind", "id", "event", "sent_at", "coi")},
            "product": {"code": d["product_code"], "system": d["product_system"], "name": d["product_name"]},
            "ordering_site": d["ordering_site"],
            "patient": {"initials": d["patient_initials"], "birth_date": d["patient_birth_date"]},
            "collection": {
                "scheduled_start": d["collection_scheduled_start"],
                "site": d["collection_site"],
                "din": d["din"],
            },
            "infusion": {"planned_at": d["infusion_planned_at"]},
            "identifiers": d["identifiers"],
        }
        return _present(tree)


def _present(tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            value = _present(value)
        if value not in (None, {}, []):
            out[key] = value
    return out


def manufacturing_order(event: CloudEvent, view: OrderView) -> ManufacturingOrder | None:
    kind = KIND.get(event.routing_key)
    if kind is None:
        return None
    order = view.order
    din = order.collection.din or next((r.value for r in view.refs if r.namespace == "isbt128:din"), None)
    return ManufacturingOrder(
        kind=kind,
        id=event.id,
        event=event.routing_key,
        sent_at=event.time,
        coi=order.coi,
        product_code=order.product.code,
        product_system=order.product.system,
        product_name=order.product.name,
        ordering_site=order.ordering_site.id,
        patient_initials=order.patient.initials,
        patient_birth_date=order.patient.birth_date,
        collection_scheduled_start=order.collection.scheduled_start,
        collection_site=order.collection.site.id if order.collection.site else None,
        din=din,
        infusion_planned_at=order.infusion.planned_at,
        identifiers=tuple(Ref(namespace=r.namespace, value=r.value) for r in view.refs),
    )
