"""What the FHIR dialect answers is valid R4 (checked with the fhir.resources R4B models): every
Task status, every error's OperationOutcome, the response Bundles, the CapabilityStatement."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from adapters.fhir import answers
from adapters.fhir.capability import capability_statement
from adapters.fhir.profile import load_profile
from adapters.fhir.task import render_task
from adapters.fhir.validation import model
from gateway import errors
from gateway.canonical.ids import ExternalRef
from gateway.canonical.lifecycle import OrderStatus
from gateway.canonical.order import Party, Product, TherapyOrder
from gateway.outcome import Outcome

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
PROFILE = load_profile("demo-hospital")


def valid(resource: dict[str, object]) -> None:
    model(str(resource["resourceType"])).model_validate(resource)


def order(status: OrderStatus) -> TherapyOrder:
    return TherapyOrder(
        product=Product(code="S9999"),
        ordering_site=Party(id="demo-hospital", name="Demo Hospital"),
        order_id="7f0c5a54-0000-4000-8000-000000000001",
        coi="CHA999926AB12CD",
        patient_id="p1",
        status=status,
        created_at=T0,
        updated_at=T0,
    )


@pytest.mark.parametrize("status", list(OrderStatus))
def test_every_status_renders_a_valid_task(status: OrderStatus) -> None:
    refs = [
        ExternalRef(namespace="site:demo-hospital:placer-order", value="PO-1"),
        ExternalRef(namespace="site:demo-hospital:mrn", value="MRN-1"),
        ExternalRef(namespace="coi", value="CHA999926AB12CD"),
    ]
    task = render_task(order(status), refs, PROFILE)
    valid(task)
    assert task["businessStatus"]["coding"][0]["code"] == status.value  # type: ignore[index]
    assert {"system": "urn:cgt:coi", "value": "CHA999926AB12CD"} in task["identifier"]  # type: ignore[operator]


ERRORS = [
    errors.MalformedMessage("x", location="Bundle.entry[0]"),
    errors.TooLarge(),
    errors.UnsupportedMessage(),
    errors.MappingError(location="ServiceRequest.code"),
    errors.ContractViolation(),
    errors.IllegalTransition(),
    errors.NotAuthenticated(),
    errors.NotPermitted(),
    errors.NotFound(),
    errors.TransientError(),
]


@pytest.mark.parametrize("exc", ERRORS, ids=lambda e: type(e).__name__)
def test_every_error_is_a_valid_operation_outcome(exc: errors.GatewayError) -> None:
    outcome = orjson.loads(answers.of_error(exc))
    valid(outcome)
    assert outcome["issue"][0]["code"] != "exception", "every error class has its issue type"


@pytest.mark.parametrize("status", ["applied", "quarantined", "rejected"])
def test_every_outcome_renders_valid_fhir(status: str) -> None:
    outcome = Outcome(
        status=status,  # type: ignore[arg-type]
        inbound_id="i1",
        partner="demo-hospital",
        order_id="o1" if status == "applied" else None,
        error=None if status == "applied" else "UnknownIdentity",
        reason=None if status == "applied" else "no identifier resolves",
        http_status=201 if status == "applied" else 202,
    )
    valid(answers.of_outcome(outcome))
    valid(answers.transaction_response(outcome, ["Patient", "ServiceRequest"]))
    valid(answers.response_message(outcome, {"id": "m1", "eventCoding": {"code": "order"}}))


def test_the_capability_statement_is_valid() -> None:
    valid(capability_statement("http://gateway/fhir/r4"))
