"""The EPCIS dialect's mapping runs its own cases (`mappings/couriers/epcis_test.yaml`); the table
refuses to start when it names what is not CBV or not a shipment event; the binding's headers
(version, error behaviour) and identifiers (SSCC, tracking number) are read as the binding says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from adapters.couriers.epcis.adapter import adapter
from adapters.couriers.epcis.capture import CaptureRequest, VersionNotAccepted
from adapters.couriers.epcis.identify import sscc
from adapters.couriers.epcis.vocabulary import MAPPING_FILE, load_vocabulary
from gateway.canonical.envelope import utcnow
from gateway.errors import ConfigError, GatewayError, MappingError, NotOurs
from gateway.partners import load_partners
from gateway.sdk import InboundContext
from gateway.settings import Settings
from tests.unit.test_example_webhook import subset

CASES = MAPPING_FILE.with_name("epcis_test.yaml")
COURIER = load_partners(Settings().partners_file, env="test").get("demo-courier")


def document(events: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {
            "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2026-11-09T08:00:00Z",
            "epcisBody": {"eventList": events},
        }
    )


def decode(raw: bytes, request: CaptureRequest | None = None) -> tuple[Any, GatewayError | None]:
    decoded = adapter.decode(raw, InboundContext(COURIER, "test", utcnow(), request))
    return decoded, decoded.error


def cases() -> list[Any]:
    loaded = yaml.safe_load(CASES.read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["name"]) for case in loaded["cases"]]


@pytest.mark.parametrize("case", cases())
def test_each_case_maps_as_written(case: dict[str, Any]) -> None:
    request = CaptureRequest(behaviour=case.get("behaviour"), webhook_id="msg_case")
    decoded, error = decode(document(case["events"]), request)
    if "expect" in case:
        assert error is None, error and error.public_message
        assert decoded.message_id == "msg_case"
        commands = [c.model_dump(mode="json") for c in decoded.commands]
        assert subset(case["expect"], commands), commands
    elif "ignored" in case:
        assert isinstance(error, NotOurs) and error.reason == case["ignored"]
    else:
        assert error is not None and type(error).__name__ == case["error"]["type"], error
        assert getattr(error, "location", None) == case["error"]["location"]
        assert not decoded.commands


def test_every_mapped_step_has_a_case() -> None:
    vocabulary = load_vocabulary()
    said = " ".join(orjson.dumps(c.values[0]["events"]).decode() for c in cases())
    for step in vocabulary.bizsteps:
        assert f'"{step}"' in said or f"bizstep:{step}" in said or f"BizStep-{step}" in said, step
    for unit in vocabulary.temperature_units:
        assert f'"uom":"{unit}"' in said or unit == "CEL", unit


def test_proceed_lists_the_events_it_left() -> None:
    cases_by_name = {c.values[0]["name"]: c.values[0] for c in cases()}
    case = cases_by_name["proceed takes the good events and leaves the bad one"]
    decoded, _ = decode(document(case["events"]), CaptureRequest(behaviour="proceed"))
    assert [e.location for e in decoded.content.errors] == ["/epcisBody/eventList/1/action"]
    assert decoded.content.behaviour == "proceed" and decoded.content.events == 2


def test_the_binding_headers() -> None:
    good = adapter.examples()[0].raw
    for version in ("2.0", "2.0.0", "2.0.1"):
        assert decode(good, CaptureRequest(version=version))[1] is None
    for version in ("1.2.0", "2.1.0", "3"):
        assert isinstance(decode(good, CaptureRequest(version=version))[1], VersionNotAccepted)
    refused = decode(good, CaptureRequest(behaviour="all"))[1]
    assert isinstance(refused, MappingError) and refused.location == "GS1-Capture-Error-Behaviour"


def test_the_idempotency_key_is_the_webhook_id_else_the_document_id_else_its_digest() -> None:
    raw = document([])
    assert decode(raw, CaptureRequest(webhook_id="msg_1"))[0].message_id == "msg_1"
    assert decode(adapter.examples()[0].raw)[0].message_id.startswith("urn:uuid:")
    assert decode(raw)[0].message_id.startswith("sha256:")


def test_ssccs_as_the_epc_urn_and_the_digital_link_say_them() -> None:
    assert sscc("urn:epc:id:sscc:4012345.3000000001") == "340123450000000017"
    assert sscc("urn:epc:id:sscc:0614141.1234567890") == "106141412345678908"
    assert sscc("https://id.gs1.org/00/106141412345678908") == "106141412345678908"
    assert sscc("https://example.com/a/00/106141412345678908?linkType=all") == "106141412345678908"
    assert sscc("urn:epc:id:sgtin:4012345.011111.1") is None
    with pytest.raises(ValueError, match="check digit"):
        sscc("https://id.gs1.org/00/106141412345678909")


def test_malformed_bodies_are_refused_where_they_break() -> None:
    assert decode(b"{not json")[1].__class__.__name__ == "MalformedMessage"
    no_date = orjson.loads(document([]))
    del no_date["creationDate"]
    error = decode(orjson.dumps(no_date))[1]
    assert error is not None and getattr(error, "location", None) == "/creationDate"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bizsteps:\n  teleporting: shipment.in_transit\n", "not a CBV business step"),
        ("bizsteps:\n  shipping: order.placed\n", "epcis mapping"),
        ("exception_dispositions: [in_transport]\n", "not CBV"),
    ],
)
def test_a_bad_table_refuses_to_start(tmp_path: Path, text: str, message: str) -> None:
    table = yaml.safe_load(MAPPING_FILE.read_text(encoding="utf-8"))
    table.update(yaml.safe_load(text))
    bad = tmp_path / "epcis.yaml"
    bad.write_text(yaml.safe_dump(table), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_vocabulary(bad)
