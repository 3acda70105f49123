"""What of a request the gateway passes over: an EHR's interface engine sends every order, every
patient and whatever else its Bundles carry, and an error answer would stall its queue.

Entries are acted on (therapy orders, their appointments, collections and infusions; patients
the gateway knows), read as the context of what is acted on (CONTEXT), or passed over: listed back to the
sender in an informational issue, never stored. A request with nothing to act on is NotOurs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.fhir.resources import Json

# Read for the orders and patients acted on (requester, product, specimen, header), not listed.
CONTEXT = (
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Specimen",
    "BiologicallyDerivedProduct",
    "Medication",
    "Location",
    "MessageHeader",
)

NOT_A_THERAPY_ORDER = "not a therapy order of this site"
NOT_A_THERAPY_APPOINTMENT = "not an apheresis or infusion appointment of this site"
NOT_AN_INFUSION = "not an infusion procedure of this site"
NOT_COMPLETED = "an infusion not completed (a completed one is taken)"
FOR_ANOTHER_ORDER = "about an order that is not a therapy order"
UNKNOWN_PATIENT = "a patient the gateway does not know"
NOT_TAKEN = "not a resource the gateway takes"


@dataclass(frozen=True)
class Passed:
    """An entry passed over: where it is, what it is, why."""

    path: str
    type: str
    why: str


def passed_issue(passed: Sequence[Passed]) -> Json | None:
    """One informational issue naming every entry passed over (by FHIRPath, never content)."""
    if not passed:
        return None
    reasons: dict[str, list[str]] = {}
    for p in passed:
        reasons.setdefault(p.why, []).append(p.type)
    text = "; ".join(f"{why}: {', '.join(sorted(set(types)))}" for why, types in reasons.items())
    return {
        "severity": "information",
        "code": "informational",
        "details": {"text": f"acknowledged and ignored ({len(passed)}): {text}"},
        "expression": [p.path for p in passed],
    }
