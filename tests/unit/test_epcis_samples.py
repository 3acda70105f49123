"""Every GS1 EPCIS 2.0 document in the shared samples (../shared/samples/epcis/, read where it
lies, never copied here) is taken: parsed, and mapped or cleanly found not ours; every one in
epcis/invalid/ is refused with an error that says where. The samples must be there: without them
this test fails (CGT_SAMPLES_DIR names another place)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.couriers.epcis.adapter import adapter
from gateway.canonical.envelope import utcnow
from gateway.errors import NotOurs, RejectedMessage
from gateway.outcome import Outcome
from gateway.partners import load_partners
from gateway.sdk import ROOT, Decoded, InboundContext
from gateway.settings import Settings

COURIER = load_partners(Settings().partners_file, env="test").get("demo-courier")


def samples() -> Path:
    given = os.environ.get("CGT_SAMPLES_DIR")
    places = [Path(given)] if given else [ROOT.parent / "shared" / "samples", Path("/work/shared/samples")]
    for place in places:
        if (place / "epcis" / "invalid").is_dir():
            return place / "epcis"
    pytest.fail(f"the EPCIS samples are missing (looked in {', '.join(map(str, places))})")


def decode(path: Path) -> Decoded:
    return adapter.decode(path.read_bytes(), InboundContext(COURIER, "test", utcnow()))


def test_the_samples_are_there() -> None:
    folder = samples()
    assert len(list(folder.glob("*.jsonld"))) >= 20
    assert len(list((folder / "invalid").glob("*.json"))) >= 4


def test_every_valid_document_is_taken() -> None:
    mapped = {}
    for path in sorted(samples().glob("*.jsonld")):
        decoded = decode(path)
        assert decoded.error is None or isinstance(decoded.error, NotOurs), (path.name, decoded.error)
        assert decoded.message_id, path.name
        outcome = Outcome(status="applied", inbound_id="1", partner=COURIER.id)
        assert adapter.answer(outcome, decoded).startswith(b"{"), path.name
        mapped[path.name] = [c.event for c in decoded.commands]
    # what those naming a shipment (an SSCC, a logger) say
    assert mapped["gs1-Example_9.6.3-AggregationEvent.jsonld"] == ["shipment.delivered"]
    assert mapped["ralphtro-epcisDocWithShippingAndTransportingEvent.jsonld"] == [
        "shipment.in_transit",
        "shipment.custody_transferred",
        "shipment.in_transit",
    ]
    assert mapped["gs1-SensorDataExample1.jsonld"] == ["shipment.readings_reported"]
    assert mapped["gs1-SensorDataExample2.jsonld"] == ["shipment.readings_reported"]
    # an error declaration carrying sensor data: noted, its readings not taken
    assert mapped["gs1-object_event_all_possible_fields.jsonld"] == ["shipment.correction_declared"]
    assert sum(1 for events in mapped.values() if events) >= 7


def test_sensor_samples_give_celsius_readings_of_their_logger() -> None:
    decoded = decode(samples() / "gs1-SensorDataExample1.jsonld")
    (command,) = decoded.commands
    payload = command.payload.model_dump(mode="json")
    assert payload["device_id"] == "urn:epc:id:giai:4000001.111"
    assert [r["temperature_c"] for r in payload["readings"]] == [26.0, 26.1, 26.2]
    interval = decode(samples() / "gs1-SensorDataExample2.jsonld").commands[0].payload.model_dump(mode="json")
    assert interval["readings"][0] | {"at": None, "until": None} == {
        "at": None,
        "until": None,
        "min_c": 26.0,
        "max_c": 26.2,
        "mean_c": 26.1,
        "temperature_c": None,
        "probe": None,
        "ln2_level_pct": None,
        "battery_pct": None,
        "light": None,
        "shock_g": None,
        "alarm": None,
    }


INVALID = {
    "openepcis-EPCISDocument_without_context.json": "/@context",
    "openepcis-ObjectEvent_with_invalid_action.json": "/epcisBody/eventList/0/action",
    "openepcis-ObjectEvent_with_non_standard_disposition.json": "/epcisBody/eventList/0/disposition",
    "openepcis-ObjectEvent_without_action_and_eventTime.json": "/epcisBody/eventList/0/eventTime",
}


@pytest.mark.parametrize(("name", "location"), INVALID.items())
def test_every_invalid_document_is_refused_where_it_breaks(name: str, location: str) -> None:
    decoded = decode(samples() / "invalid" / name)
    assert isinstance(decoded.error, RejectedMessage), decoded.error
    assert decoded.error.location == location
    assert location.rsplit("/", 1)[-1] in decoded.error.public_message
    assert not decoded.commands


def test_every_invalid_document_is_refused() -> None:
    for path in (samples() / "invalid").iterdir():
        decoded = decode(path)
        assert isinstance(decoded.error, RejectedMessage), path.name
        assert path.name in INVALID, f"{path.name}: say where it breaks in INVALID"
