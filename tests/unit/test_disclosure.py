"""Disclosure profiles: the shipped ones, the filter, and start-up refusing a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.canonical.ids import ExternalRef
from gateway.canonical.order import (
    Collection,
    Manufacturing,
    Party,
    PatientIdentity,
    Product,
    Shipment,
    ShipmentDirection,
    TemperatureClass,
    TherapyOrder,
)
from gateway.errors import ConfigError
from gateway.identity.disclosure import disclose, load_disclosure
from gateway.partners import load_partners
from gateway.settings import Settings
from tests.support.builders import T0

SETTINGS = Settings(env="test")
PARTNERS = load_partners(SETTINGS.partners_file, env="test")
SHIPPED = load_disclosure(SETTINGS.disclosure_dir, PARTNERS)

ORDER = TherapyOrder(
    order_id="o-1",
    coi="CHA999926ABC123",
    patient_id="p-1",
    patient=PatientIdentity(family_name="Invented", given_name="Ivy", birth_date="1971-03-04", sex="F"),
    product=Product(code="S1234"),
    ordering_site=Party(id="demo-hospital"),
    ordering_practitioner=Party(id="1234567", name="Doctor Demo"),
    collection=Collection(site=Party(id="apheresis-1"), din="A999914123458", collected_at=T0),
    manufacturing=Manufacturing(manufacturer=Party(id="demo-manufacturer"), batch_id="B-1"),
    shipments=(
        Shipment(
            shipment_id="S-1",
            direction=ShipmentDirection.to_manufacturer,
            temperature_class=TemperatureClass.cryo_minus_150c,
        ),
    ),
    notes="free text a site wrote",
    created_at=T0,
    updated_at=T0,
)
REFS = (
    ExternalRef(namespace="site:demo-hospital:mrn", value="MRN-424242"),
    ExternalRef(namespace="coi", value="CHA999926ABC123"),
    ExternalRef(namespace="mes:demo-manufacturer:order", value="MES-1"),
    ExternalRef(namespace="courier:demo-courier:awb", value="AWB-1"),
)


def test_a_site_receives_the_whole_order_with_its_patient_and_only_its_own_and_shared_ids() -> None:
    order, refs = disclose(ORDER, REFS, PARTNERS.get("demo-hospital"), SHIPPED)
    assert order == ORDER
    assert [r.value for r in refs] == ["MRN-424242", "CHA999926ABC123"]


def test_a_manufacturer_receives_initials_and_birth_date_but_no_names_no_mrn_and_no_notes() -> None:
    order, refs = disclose(ORDER, REFS, PARTNERS.get("demo-manufacturer"), SHIPPED)
    assert order.patient == PatientIdentity(initials="II", birth_date="1971-03-04")
    assert order.notes is None and order.ordering_practitioner is None
    assert order.collection.din == "A999914123458" and order.manufacturing.batch_id == "B-1"
    assert order.shipments == ORDER.shipments and order.coi == ORDER.coi
    assert [r.value for r in refs] == ["CHA999926ABC123", "MES-1"]


def test_a_courier_receives_shipments_and_the_parties_but_not_the_patient_nor_manufacturing() -> None:
    order, refs = disclose(ORDER, REFS, PARTNERS.get("demo-courier"), SHIPPED)
    assert order.patient == PatientIdentity() and order.notes is None
    assert order.shipments[0].temperature_class is TemperatureClass.cryo_minus_150c
    assert order.collection.site == Party(id="apheresis-1") and order.collection.collected_at is None
    assert order.manufacturing == Manufacturing(manufacturer=Party(id="demo-manufacturer"))
    assert [r.value for r in refs] == ["CHA999926ABC123", "AWB-1"]


def test_initials_are_derived_from_the_names_whatever_a_message_said() -> None:
    claimed = ORDER.patient.model_copy(update={"initials": "ZZ", "given_name": "Éva Marie"})
    order, _ = disclose(
        ORDER.model_copy(update={"patient": claimed}), REFS, PARTNERS.get("demo-manufacturer"), SHIPPED
    )
    assert order.patient.initials == "EI"
    nameless = ORDER.model_copy(update={"patient": PatientIdentity(birth_date="1971-03-04")})
    assert disclose(nameless, REFS, PARTNERS.get("demo-manufacturer"), SHIPPED)[0].patient.initials is None


def _copy_shipped(tmp_path: Path) -> Path:
    (tmp_path / "partners").mkdir()
    for path in SETTINGS.disclosure_dir.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


def test_a_partners_own_profile_replaces_its_kinds(tmp_path: Path) -> None:
    directory = _copy_shipped(tmp_path)
    (directory / "partners" / "demo-manufacturer.yaml").write_text(
        yaml.safe_dump({"fields": ["manufacturing", "patient.sex"], "identifiers": ["shared"]}),
        encoding="utf-8",
    )
    disclosure = load_disclosure(directory, PARTNERS)
    order, refs = disclose(ORDER, REFS, PARTNERS.get("demo-manufacturer"), disclosure)
    assert order.patient == PatientIdentity(sex="F") and order.collection == Collection()
    assert [r.value for r in refs] == ["CHA999926ABC123"]
    other, _ = disclose(ORDER, REFS, PARTNERS.get("demo-courier"), disclosure)
    assert other.shipments == ORDER.shipments  # other partners keep their kind's


@pytest.mark.parametrize(
    ("name", "document", "named"),
    [
        ("manufacturer.yaml", {"fields": ["patient.nickname"]}, "nickname"),
        ("courier.yaml", {"fields": ["shipments"], "identifiers": ["everyone"]}, "identifiers"),
        ("site.yaml", {"fields": ["notes.text"]}, "notes"),
        ("partners/no-such-partner.yaml", {"fields": ["coi"]}, "no-such-partner"),
    ],
)
def test_a_bad_profile_refuses_to_start_naming_the_file_and_the_field(
    tmp_path: Path, name: str, document: object, named: str
) -> None:
    directory = _copy_shipped(tmp_path)
    (directory / name).write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_disclosure(directory, PARTNERS)
    assert str(directory / name) in str(raised.value) and named in str(raised.value)


def test_a_missing_kind_refuses_to_start(tmp_path: Path) -> None:
    directory = _copy_shipped(tmp_path)
    (directory / "courier.yaml").unlink()
    with pytest.raises(ConfigError, match=r"courier\.yaml: missing"):
        load_disclosure(directory, PARTNERS)
