"""What a site's EHR sends over FHIR R4: the collection as a transaction Bundle with the collected
BiologicallyDerivedProduct (its DIN), the infusion as a completed Procedure, both naming the order
by its placer order number and the patient by MRN, as an EHR that never saw the gateway's ids
would. The systems are the demo site's FHIR profile's (`simulate config` writes the same)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.simulate.identities import Identities
from gateway.simulate.model import Step, iso

MRN = "urn:oid:2.16.840.1.113883.3.9999.1"
PLACER = "urn:oid:2.16.840.1.113883.3.9999.2"
BUNDLE = "urn:oid:2.16.840.1.113883.3.9999.5"
DIN = "urn:cgt:isbt128:din"
SERVICES = "urn:oid:2.16.840.1.113883.3.9999.4"
BASE = "/fhir/r4"


def _patient(ids: Identities) -> dict[str, Any]:
    return {"identifier": {"system": MRN, "value": ids.mrn}}


def _order(ids: Identities) -> dict[str, Any]:
    return {"identifier": {"system": PLACER, "value": ids.placer}}


def collection(step: Step) -> tuple[str, dict[str, Any]]:
    """The apheresis bag collected: a transaction Bundle (its identifier: the step's key)."""
    ids = step.ids
    product = {
        "resourceType": "BiologicallyDerivedProduct",
        "identifier": [{"system": DIN, "value": ids.din}],
        "productCategory": "cells",
        "status": "available",
        "request": [_order(ids)],
        "quantity": 1,
        "collection": {"source": _patient(ids), "collectedDateTime": iso(step.data["collected_at"])},
    }
    bundle = {
        "resourceType": "Bundle",
        "identifier": {"system": BUNDLE, "value": step.key},
        "type": "transaction",
        "entry": [{"resource": product, "request": {"method": "POST", "url": "BiologicallyDerivedProduct"}}],
    }
    return BASE, bundle


def infusion(step: Step, now: datetime) -> tuple[str, dict[str, Any]]:
    """The infusion done: a completed Procedure (its id the step's key, version 1)."""
    ids = step.ids
    procedure = {
        "resourceType": "Procedure",
        "id": step.key,
        "meta": {"versionId": "1", "lastUpdated": iso(now)},
        "status": "completed",
        "code": {"coding": [{"system": SERVICES, "code": "CART-INFUSION", "display": "CAR-T infusion"}]},
        "subject": _patient(ids),
        "basedOn": [_order(ids)],
        "performedPeriod": {"start": iso(step.data["infused_at"])},
    }
    return f"{BASE}/Procedure", procedure
