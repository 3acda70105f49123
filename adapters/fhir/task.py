"""A therapy order as a FHIR Task: status and businessStatus follow the canonical lifecycle, focus
is the site's ServiceRequest (by its placer order number), identifiers include the COI."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from adapters.fhir.profile import PROFILES_DIR, SiteProfile
from adapters.fhir.resources import Json
from gateway.sdk import ConfigError, ExternalRef, OrderStatus, TherapyOrder

TASK_STATUS_FILE = PROFILES_DIR / "task-status.yaml"
PLAC = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]}
FULFILL = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}


class StatusEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    task: str
    display: str


class TaskStatusMap(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    business_status_system: str
    statuses: dict[OrderStatus, StatusEntry]

    @model_validator(mode="after")
    def _complete(self) -> TaskStatusMap:
        missing = set(OrderStatus) - set(self.statuses)
        if missing:
            raise ValueError(f"no Task status for: {', '.join(sorted(missing))}")
        return self


@cache
def status_map(path: Path = TASK_STATUS_FILE) -> TaskStatusMap:
    try:
        return TaskStatusMap.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"Task status map {path}: {exc}") from exc


def _identifier(ref: ExternalRef, profile: SiteProfile) -> Json | None:
    for kind in ("placer_order", "coi", "mrn", "din"):
        rule = profile.rule(kind)
        if rule.namespace == ref.namespace:
            found: Json = {"system": rule.system, "value": ref.value}
            if kind == "placer_order":
                found["type"] = PLAC
            return found
    return None


def render_task(
    order: TherapyOrder,
    refs: Iterable[ExternalRef],
    profile: SiteProfile,
    *,
    status: OrderStatus | None = None,
    modified: datetime | None = None,
) -> Json:
    """The order's Task (`status` and `modified` override the order's: a notification tells the
    status its event made, not whatever the order has become since)."""
    statuses = status_map()
    current = status or order.status
    entry = statuses.statuses[current]
    ns = profile.identifiers
    known = [(r, i) for r in refs if (i := _identifier(r, profile)) is not None]
    placers = [i for r, i in known if r.namespace == ns.placer_order.namespace]
    mrns = [i for r, i in known if r.namespace == ns.mrn.namespace]
    task: Json = {
        "resourceType": "Task",
        "id": order.order_id,
        "identifier": [
            {"system": ns.coi.system, "value": order.coi},
            *(i for r, i in known if r.namespace in (ns.placer_order.namespace, ns.din.namespace)),
        ],
        "status": entry.task,
        "businessStatus": {
            "coding": [
                {"system": statuses.business_status_system, "code": current.value, "display": entry.display}
            ],
            "text": entry.display,
        },
        "intent": "order",
        "code": FULFILL,
        "authoredOn": order.created_at.isoformat(),
        "lastModified": (modified or order.updated_at).isoformat(),
        "requester": {"type": "Organization", "display": order.ordering_site.name or order.ordering_site.id},
    }
    if status is None:
        task["meta"] = {"versionId": str(order.version), "lastUpdated": order.updated_at.isoformat()}
    if placers:
        focus = {"type": "ServiceRequest", "identifier": placers[0]}
        task["focus"] = focus
        task["basedOn"] = [focus]
    if mrns:
        task["for"] = {"type": "Patient", "identifier": mrns[0]}
    maker = order.manufacturing.manufacturer
    if maker is not None:
        task["owner"] = {"type": "Organization", "display": maker.name or maker.id}
    return task


REJECTED_SYSTEM = "urn:cgt:gateway:quarantine"


def rejected_task(quarantine_id: str, request_id: object, modified: datetime) -> Json:
    """The Task that tells a site its held request was rejected on identity review: its own id
    (the request may have made no order), `rejected`, focused on the request as the site named it."""
    task: Json = {
        "resourceType": "Task",
        "id": f"rejected-{quarantine_id}"[:64],
        "identifier": [{"system": REJECTED_SYSTEM, "value": quarantine_id}],
        "status": "rejected",
        "statusReason": {
            "text": "rejected on identity review by quality assurance; the request was not applied"
        },
        "businessStatus": {"text": "identity review: rejected"},
        "intent": "order",
        "code": FULFILL,
        "lastModified": modified.isoformat(),
    }
    if isinstance(request_id, str) and request_id:
        task["focus"] = {"identifier": {"value": request_id}, "display": "the request held for review"}
    return task
