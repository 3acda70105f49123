"""What the gateway answers a FHIR client: OperationOutcome for every error (and for a quarantined
message, held for review), a transaction-response or response message Bundle when applied."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import orjson

from adapters.fhir.resources import Json
from gateway.sdk import GatewayError, Outcome, RejectedMessage, utcnow

FHIR_JSON = "application/fhir+json"
Severity = Literal["fatal", "error", "warning", "information"]

# Our error classes -> the FHIR issue-type code (http://hl7.org/fhir/issue-type).
ISSUE_TYPES = {
    "MalformedMessage": "structure",
    "InvalidCode": "code-invalid",
    "TooLarge": "too-long",
    "UnsupportedMessage": "not-supported",
    "UnsupportedMediaType": "not-supported",
    "MappingError": "value",
    "ContractViolation": "invariant",
    "IllegalTransition": "business-rule",
    "DuplicateKey": "duplicate",
    "NotAuthenticated": "login",
    "NotPermitted": "forbidden",
    "NotFound": "not-found",
    "TransientError": "transient",
    "UnknownIdentity": "processing",
    "ConflictingIdentities": "conflict",
    "AlreadyBound": "duplicate",
    "DemographicMismatch": "processing",
}


def issue(
    severity: Severity, code: str, text: str, expression: str | None = None, diagnostics: str | None = None
) -> Json:
    found: Json = {"severity": severity, "code": code, "details": {"text": text}}
    if diagnostics:
        found["diagnostics"] = diagnostics
    if expression:
        found["expression"] = [expression]
    return found


def operation_outcome(*issues: Json) -> Json:
    return {"resourceType": "OperationOutcome", "issue": list(issues)}


def render(resource: Json) -> bytes:
    return orjson.dumps(resource)


def of_error(exc: GatewayError) -> bytes:
    """An error raised outside the intake (authentication, limits, queries)."""
    location = exc.location if isinstance(exc, RejectedMessage) else None
    code = ISSUE_TYPES.get(type(exc).__name__, "exception")
    return render(operation_outcome(issue("error", code, exc.public_message, location)))


def of_outcome(outcome: Outcome) -> Json:
    """The OperationOutcome of an intake outcome; never a patient's data, only reasons."""
    code = ISSUE_TYPES.get(outcome.error or "", "processing")
    text = outcome.reason or "the message could not be processed"
    if outcome.status == "quarantined":
        return operation_outcome(
            issue("warning", code, f"accepted and held for review: {text}", diagnostics=outcome.error)
        )
    if outcome.status == "rejected":
        return operation_outcome(issue("error", code, text, outcome.location, outcome.error))
    if outcome.status == "ignored":  # not the gateway's business: an answer that does not stall
        return operation_outcome(issue("information", "informational", text, diagnostics=outcome.code))
    where = f"Task/{outcome.order_id}" if outcome.order_id else "the patient's records"
    return operation_outcome(issue("information", "informational", f"applied to {where}"))


def transaction_response(outcome: Outcome, types: list[str]) -> Json:
    """One response entry per request entry, in order: the order's entry points at its Task; the
    other entries were taken as its context, not stored as resources of their own."""
    entries: list[Json] = []
    for kind in types:
        response: dict[str, Any] = {"status": "200 OK"}
        if kind in ("ServiceRequest", "MedicationRequest") and outcome.order_id:
            response = {"status": "201 Created", "location": f"Task/{outcome.order_id}"}
        entries.append({"response": response})
    entries[0]["response"]["outcome"] = of_outcome(outcome)
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def response_message(outcome: Outcome, request_header: Json) -> Json:
    """A FHIR message answering `request_header` (MessageHeader.response)."""
    header: Json = {
        "resourceType": "MessageHeader",
        "id": str(uuid.uuid4()),
        "source": {"endpoint": "urn:cgt:gateway"},
        "response": {
            "identifier": request_header.get("id", "unknown"),
            "code": "ok" if outcome.status == "applied" else "fatal-error",
        },
    }
    if "eventCoding" in request_header:
        header["eventCoding"] = request_header["eventCoding"]
    else:
        header["eventUri"] = request_header.get("eventUri", "urn:cgt:event:unknown")
    entries = [
        {"fullUrl": f"urn:uuid:{header['id']}", "resource": header},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": of_outcome(outcome)},
    ]
    header["response"]["details"] = {"reference": entries[1]["fullUrl"]}
    return {
        "resourceType": "Bundle",
        "type": "message",
        "timestamp": utcnow().isoformat(),
        "entry": entries,
    }
