"""Manufacturing orders, pure: JSON and B2MML rendered from the manufacturer's own view carry the
chain of identity and the label data (initials, birth date), never a name or an MRN; the B2MML
parses back (defusedxml) in its version's namespace; a bad profile refuses to start."""

from __future__ import annotations

from pathlib import Path

import defusedxml.ElementTree as SafeET
import orjson
import pytest
import yaml

from adapters.mes.orders.adapter import MesOrdersAdapter
from adapters.mes.orders.b2mml import V0600, V07
from adapters.mes.orders.outbound import render_order
from adapters.mes.orders.profile import OrderProfile
from gateway.canonical.ids import ExternalRef
from gateway.canonical.order import Collection, Infusion, Party, PatientIdentity, Product, TherapyOrder
from gateway.errors import ConfigError
from gateway.identity.disclosure import disclose, load_disclosure
from gateway.partners import load_partners
from gateway.ports import OrderView
from gateway.settings import Settings
from tests.support.builders import T0, status_event

SETTINGS = Settings(env="test")
PARTNERS = load_partners(SETTINGS.partners_file, env="test")
MAKER = PARTNERS.get("demo-manufacturer")
FAMILY, GIVEN, MRN = "O'Invented & <Sons>", "Ivy", "MRN-424242"
ORDER = TherapyOrder(
    order_id="o-1",
    coi="CHA999926ABC123",
    patient_id="p-1",
    patient=PatientIdentity(family_name=FAMILY, given_name=GIVEN, birth_date="1971-03-04", sex="F"),
    product=Product(code="S1234", name="Demo autologous CAR-T"),
    ordering_site=Party(id="demo-hospital"),
    collection=Collection(scheduled_start=T0, site=Party(id="apheresis-1"), din="A999914123458"),
    infusion=Infusion(planned_at=T0.replace(month=12)),
    notes="call Ivy the day before",
    created_at=T0,
    updated_at=T0,
)
REFS = (
    ExternalRef(namespace="site:demo-hospital:mrn", value=MRN),
    ExternalRef(namespace="coi", value="CHA999926ABC123"),
    ExternalRef(namespace="mes:demo-manufacturer:order", value="MESORD-1"),
)
FORBIDDEN = ("Invented", GIVEN, MRN, "call Ivy", "demo-hospital:mrn")


def view() -> OrderView:
    shown, refs = disclose(ORDER, REFS, MAKER, load_disclosure(SETTINGS.disclosure_dir, PARTNERS))
    return OrderView(shown, refs)


def profile(fmt: str) -> OrderProfile:
    return OrderProfile.model_validate(
        {"manufacturer": "demo-manufacturer", "format": fmt, "transport": {"kind": "amqp"}}
    )


def leaks(body: bytes) -> list[str]:
    return [word for word in FORBIDDEN if word.upper() in body.decode().upper()]


@pytest.mark.parametrize("due", ["order.placed", "collection.scheduled"])
def test_the_json_order_carries_the_chain_of_identity_and_the_label_data_only(due: str) -> None:
    message = render_order(status_event(due), view(), profile("json"))
    assert message is not None and message.content_type == "application/json" and leaks(message.body) == []
    sent = orjson.loads(message.body)
    assert (
        sent["kind"] == {"order.placed": "manufacturing_order", "collection.scheduled": "slot_request"}[due]
    )
    assert sent["coi"] == "CHA999926ABC123" and sent["patient"] == {
        "initials": "IO",
        "birth_date": "1971-03-04",
    }
    assert sent["collection"] == {
        "scheduled_start": "2026-11-02T09:00:00Z",
        "site": "apheresis-1",
        "din": "A999914123458",
    }
    assert sent["product"] == {"code": "S1234", "system": "isbt128", "name": "Demo autologous CAR-T"}
    assert sent["identifiers"] == [
        {"namespace": "coi", "value": "CHA999926ABC123"},
        {"namespace": "mes:demo-manufacturer:order", "value": "MESORD-1"},
    ]
    assert render_order(status_event("collection.completed"), view(), profile("json")) is None


@pytest.mark.parametrize(("fmt", "namespace", "root", "request_tag", "parameter"), [
    ("b2mml-v0600", V0600, "ProcessProductionSchedule", "ProductionSchedule/{ns}ProductionRequest", "ProductionParameter"),
    ("b2mml-v07", V07, "ProcessOperationsSchedule", "OperationsSchedule/{ns}OperationsRequest", "SegmentParameter"),
])  # fmt: skip
def test_b2mml_parses_back_in_its_versions_namespace_with_the_same_values(
    fmt: str, namespace: str, root: str, request_tag: str, parameter: str
) -> None:
    message = render_order(status_event("order.placed"), view(), profile(fmt))
    assert message is not None and message.content_type == "application/xml" and leaks(message.body) == []
    ns = f"{{{namespace}}}"
    document = SafeET.fromstring(message.body)
    assert document.tag == f"{ns}{root}"
    request = document.find(f"{ns}DataArea/{ns}{request_tag.format(ns=ns)}")
    assert request is not None and request.findtext(f"{ns}ID") == "CHA999926ABC123"
    segment = request.find(f"{ns}SegmentRequirement")
    assert segment is not None and segment.findtext(f"{ns}ProcessSegmentID") == "S1234"
    values = {
        p.findtext(f"{ns}ID"): p.findtext(f"{ns}Value/{ns}ValueString")
        for p in segment.iter(f"{ns}{parameter}")
    }
    assert values == {
        "kind": "manufacturing_order",
        "coi": "CHA999926ABC123",
        "din": "A999914123458",
        "patient-initials": "IO",
        "patient-birth-date": "1971-03-04",
        "ordering-site": "demo-hospital",
        "collection-site": "apheresis-1",
        "product-system": "isbt128",
    }
    assert segment.findtext(f"{ns}MaterialRequirement/{ns}MaterialLotID") == "A999914123458"
    assert document.findtext(f"{ns}ApplicationArea/{ns}BODID") == status_event("order.placed").id


def test_values_are_escaped_by_the_serialiser() -> None:
    hostile = ORDER.model_copy(update={"product": Product(code="S1234", name="</Description><Injected/>&")})
    shown, refs = disclose(hostile, REFS, MAKER, load_disclosure(SETTINGS.disclosure_dir, PARTNERS))
    message = render_order(status_event("order.placed"), OrderView(shown, refs), profile("b2mml-v0600"))
    assert message is not None
    parsed = SafeET.fromstring(message.body)
    ns = f"{{{V0600}}}"
    assert parsed.find(f".//{ns}Injected") is None
    assert parsed.findtext(f".//{ns}SegmentRequirement/{ns}Description") == "</Description><Injected/>&"


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"manufacturer": "demo-manufacturer", "format": "csv", "transport": {"kind": "amqp"}}, "format"),
        ({"manufacturer": "demo-manufacturer", "transport": {"kind": "ftp"}}, "transport"),
        (
            {"manufacturer": "demo-courier", "transport": {"kind": "amqp"}},
            "demo-courier is not a manufacturer",
        ),
        (
            {
                "manufacturer": "demo-manufacturer",
                "transport": {"kind": "amqp"},
                "events": ["order.cancelled"],
            },
            "events",
        ),
    ],
)
def test_a_bad_order_profile_refuses_to_start_naming_the_file_and_the_field(
    tmp_path: Path, document: dict[str, object], named: str
) -> None:
    (tmp_path / "demo-manufacturer.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        MesOrdersAdapter().configure(Settings(env="test", profile_dirs={"mes/orders": tmp_path}), PARTNERS)
    assert "demo-manufacturer.yaml" in str(refused.value) and named in str(refused.value)
