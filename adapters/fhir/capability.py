"""The CapabilityStatement: what /fhir/r4 actually serves (a test holds it to the router)."""

from __future__ import annotations

from typing import Any

from adapters.fhir.resources import Json
from gateway.sdk import __version__

BASE = "/fhir/r4"
TOKEN_PATH = f"{BASE}/auth/token"

# resource type -> (interactions, conditional create, search params, operations)
RESOURCES: dict[str, dict[str, Any]] = {
    "ServiceRequest": {"interactions": ["create", "update"], "conditionalCreate": True},
    "MedicationRequest": {"interactions": ["create", "update"], "conditionalCreate": True},
    "Patient": {"interactions": ["create", "update"], "operations": ["merge"]},
    "Appointment": {"interactions": ["create", "update"]},
    "Procedure": {"interactions": ["create", "update"]},
    "Task": {"interactions": ["read", "search-type"], "search": {"identifier": "token"}},
}
DOCS = {
    "ServiceRequest": "A therapy order (its code names a product of the site's profile): active places "
    "it (idempotent on the placer order number), on-hold holds it, revoked or entered-in-error cancels "
    "it; PUT as active resumes a held order. Any other order is acknowledged (200) and ignored.",
    "MedicationRequest": "A commercial product order; taken like ServiceRequest.",
    "Patient": "Demographics update by MRN; a link replaced-by/replaces, or $merge, merges records. "
    "A patient no order names is acknowledged (200) and ignored.",
    "Appointment": "Apheresis (collection) or infusion appointment, based on the order; any other "
    "appointment is acknowledged (200) and ignored.",
    "Procedure": "A completed infusion (its code one of the site's infusion codes, based on the "
    "order): the order is infused at its performed time. Any other procedure, or an infusion not "
    "completed, is acknowledged (200) and ignored.",
    "Task": "Each order as a Task: status and businessStatus follow the order's lifecycle.",
}


def capability_statement(base_url: str) -> Json:
    resources: list[Json] = []
    for kind, spec in RESOURCES.items():
        entry: Json = {
            "type": kind,
            "documentation": DOCS[kind],
            "interaction": [{"code": code} for code in spec["interactions"]],
        }
        if spec.get("conditionalCreate"):
            # an order PUT that the gateway does not know yet is placed: update as create
            entry["conditionalCreate"] = True
            entry["updateCreate"] = True
        if "search" in spec:
            entry["searchParam"] = [{"name": n, "type": t} for n, t in spec["search"].items()]
        if "operations" in spec:
            entry["operation"] = [
                {"name": op, "definition": f"http://hl7.org/fhir/OperationDefinition/{kind}-{op}"}
                for op in spec["operations"]
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "kind": "instance",
        "software": {"name": "cgt-gateway", "version": __version__},
        "implementation": {"description": "CGT interoperability gateway, FHIR R4 dialect", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "POST a transaction or message Bundle to the base; message Bundles "
                "also at $process-message. Authenticate with X-API-Key or an OAuth2 bearer token.",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [{"url": "token", "valueUri": f"{base_url}/auth/token"}],
                        }
                    ],
                    "description": "SMART Backend Services (client_credentials with a private_key_jwt "
                    "assertion, RS384 or ES384), or an API key in X-API-Key.",
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}],
                "operation": [
                    {
                        "name": "process-message",
                        "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
                    }
                ],
            }
        ],
    }
