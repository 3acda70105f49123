"""The required terminology bindings of the elements the gateway reads, checked by us: the R4B
models check a code's shape, not its value set, so `gender: "x"` would pass them.

Each value set is the whole R4 (4.0.1) one, not the part the gateway acts on: a code R4 allows
but the gateway does not take (a draft order) is refused by the mapping, with its own reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.sdk import MalformedMessage

REQUEST_STATUS = ("draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown")
REQUEST_PRIORITY = ("routine", "urgent", "asap", "stat")

# resource type -> element path (dots walk into objects and through lists) -> the value set.
REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "Bundle": {
        "type": (
            "document",
            "message",
            "transaction",
            "transaction-response",
            "batch",
            "batch-response",
            "history",
            "searchset",
            "collection",
        ),
        "entry.request.method": ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"),
    },
    "Patient": {
        "gender": ("male", "female", "other", "unknown"),
        "identifier.use": ("usual", "official", "temp", "secondary", "old"),
        "name.use": ("usual", "official", "temp", "nickname", "anonymous", "old", "maiden"),
        "link.type": ("replaced-by", "replaces", "refer", "seealso"),
    },
    "ServiceRequest": {
        "status": REQUEST_STATUS,
        "intent": (
            "proposal",
            "plan",
            "directive",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        ),
        "priority": REQUEST_PRIORITY,
        "identifier.use": ("usual", "official", "temp", "secondary", "old"),
    },
    "MedicationRequest": {
        "status": (
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        ),
        "intent": (
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        ),
        "priority": REQUEST_PRIORITY,
        "identifier.use": ("usual", "official", "temp", "secondary", "old"),
    },
    "Appointment": {
        "status": (
            "proposed",
            "pending",
            "booked",
            "arrived",
            "fulfilled",
            "cancelled",
            "noshow",
            "entered-in-error",
            "checked-in",
            "waitlist",
        ),
        "participant.status": ("accepted", "declined", "tentative", "needs-action"),
    },
    "Procedure": {
        "status": (
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        ),
    },
    "BiologicallyDerivedProduct": {
        "productCategory": ("organ", "tissue", "fluid", "cells", "biologicalAgent"),
        "status": ("available", "unavailable"),
        "storage.scale": ("farenheit", "celsius", "kelvin"),  # sic: R4's code
    },
}


class InvalidCode(MalformedMessage):
    """A code outside the required value set of its element (FHIR issue type code-invalid)."""

    public_message = "a code is not in the value set its element requires"


def _values(node: Any, steps: list[str], path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _values(item, steps, f"{path}[{i}]")
        return
    if not steps:
        yield path, node
        return
    if isinstance(node, dict) and steps[0] in node:
        yield from _values(node[steps[0]], steps[1:], f"{path}.{steps[0]}")


def check_bindings(resource: dict[str, Any], path: str) -> None:
    """Refuse the first code outside its required value set, naming the element by FHIRPath."""
    for element, allowed in REQUIRED.get(str(resource.get("resourceType")), {}).items():
        for where, value in _values(resource, element.split("."), path):
            if value not in allowed:
                raise InvalidCode(
                    f"{where}: {value!r} is not a code of its required value set ({', '.join(allowed)})",
                    location=where,
                    code="code-invalid",
                )
