"""Golden tests of the FHIR R4 mapping: tests/fixtures/fhir/*.json in, *.canonical.json out, run by
the shared golden runner (tests/support/golden.py; CGT_REGOLD=1 rewrites the expected files).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.fhir.adapter import adapter
from adapters.fhir.message import Interaction
from gateway.canonical.envelope import utcnow
from gateway.partners import load_partners
from gateway.registry import InboundContext
from gateway.sdk import Decoded
from gateway.settings import Settings
from tests.support import golden

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"
PARTNERS = load_partners(Settings().partners_file, env="test")

CASES = {
    "order-transaction.json": Interaction(),
    "order-message.json": Interaction(),
    "collection-completed.json": Interaction(),
    "servicerequest-revoked.json": Interaction("PUT", "ServiceRequest", "sr-000001"),
    "appointment-infusion.json": Interaction("PUT", "Appointment", "appt-infusion-1"),
    "patient-update.json": Interaction("PUT", "Patient", "pat-000001"),
    "patient-replaced-by.json": Interaction("PUT", "Patient", "pat-000009"),
    "patient-merge.parameters.json": Interaction(operation="merge"),
}


def ctx(interaction: Interaction) -> InboundContext:
    return InboundContext(PARTNERS.get("demo-hospital"), "test", utcnow(), interaction)


def decode(name: str, interaction: Interaction) -> Decoded:
    """The adapter's decode of one fixture, as the FHIR routes call it."""
    return adapter.decode((FIXTURES / name).read_bytes(), ctx(interaction))


def canonical(name: str, interaction: Interaction) -> dict[str, object]:
    return golden.canonical(lambda: decode(name, interaction))


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_maps_to_its_golden_canonical_json(name: str) -> None:
    golden.check(FIXTURES / name, lambda: decode(name, CASES[name]))


def test_every_fixture_has_a_golden_file_and_a_case() -> None:
    inputs = {p.name for p in FIXTURES.glob("*.json") if not p.name.endswith(".canonical.json")}
    assert inputs == set(CASES)
    assert all((FIXTURES / n.replace(".json", ".canonical.json")).is_file() for n in CASES)


def test_the_official_style_order_bundle_places_the_order_and_schedules_apheresis() -> None:
    got = canonical("order-transaction.json", Interaction())
    placed, scheduled = got["commands"]  # type: ignore[misc]
    assert placed["event"] == "order.placed" and scheduled["event"] == "collection.scheduled"
    order = placed["payload"]["order"]
    assert order["product"] == {"code": "S9999", "system": "isbt128", "name": "Demo autologous CAR-T"}
    assert order["ordering_site"]["id"] == "demo-hospital"
    assert order["ordering_practitioner"] == {"id": "9999999999", "name": "Demo Oncologist"}
    assert placed["patient"] == {
        "family_name": "Testpatient",
        "given_name": "Alpha",
        "birth_date": "1970-01-01",
        "sex": "F",
    }
    assert {"namespace": "site:demo-hospital:mrn", "value": "MRN-000001"} in placed["refs"]
    assert scheduled["payload"]["scheduled_start"] == "2026-11-09T08:00:00Z"
    # a re-sent order is the same message, whatever Bundle it comes in
    assert got["message_id"] == "ServiceRequest?identifier=site:demo-hospital:placer-order|PO-000001"


def test_a_collected_product_binds_its_din() -> None:
    (command,) = canonical("collection-completed.json", Interaction())["commands"]  # type: ignore[misc]
    din = {"namespace": "isbt128:din", "value": "A999921123456"}
    assert command["event"] == "collection.completed"
    assert din in command["refs"] and command["binds"] == [din]
    assert command["payload"]["din"] == "A999921123456"


def test_a_replaced_by_link_merges_this_record_into_the_other() -> None:
    (command,) = canonical("patient-replaced-by.json", CASES["patient-replaced-by.json"])["commands"]  # type: ignore[misc]
    assert command["event"] == "patient.merged"
    assert command["payload"]["prior"] == [{"namespace": "site:demo-hospital:mrn", "value": "MRN-000009"}]
    merged = canonical("patient-merge.parameters.json", Interaction(operation="merge"))["commands"]
    assert merged == [command]  # $merge and the link say the same thing
