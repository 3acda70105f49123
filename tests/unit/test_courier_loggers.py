"""Logger dialects, pure: golden files of Tive-shaped batches and The Things Stack uplinks
(tests/fixtures/couriers/, regenerate with CGT_REGOLD=1), the Milesight decoder against the
vendor's expected decodes of real uplinks (read from the samples folder at test time), and the
shipment keys."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import get_args

import orjson
import pytest
import yaml

from adapters.couriers.loggers import ALARMS, ShipmentKeys, is_sscc, load_alarms, readings_commands
from adapters.couriers.lorawan import milesight
from adapters.couriers.lorawan.adapter import adapter as lorawan
from adapters.couriers.lorawan.adapter import parse, unix_ms
from adapters.couriers.tive.adapter import adapter as tive
from adapters.couriers.tive.wire import ShipperState
from gateway.canonical.envelope import utcnow
from gateway.canonical.payloads import Reading
from gateway.errors import ConfigError
from gateway.partners import load_partners
from gateway.sdk import InboundContext
from gateway.settings import ROOT, Settings
from tests.support.golden import check

FIXTURES = ROOT / "tests" / "fixtures" / "couriers"
COURIER = load_partners(Settings().partners_file, env="test").get("demo-courier")
CTX = InboundContext(COURIER, "test", utcnow())


def samples_dir() -> Path:
    """The shared samples: CGT_SAMPLES_DIR, else beside the repository, else /work/shared/samples."""
    given = os.environ.get("CGT_SAMPLES_DIR")
    candidates = (
        [Path(given)] if given else [ROOT.parent / "shared" / "samples", Path("/work/shared/samples")]
    )
    for candidate in candidates:
        if (candidate / "telemetry").is_dir():
            return candidate / "telemetry"
    raise AssertionError(f"the samples folder is missing (looked in {', '.join(map(str, candidates))})")


def sources(folder: str) -> list[Path]:
    found = sorted(p for p in (FIXTURES / folder).glob("*.json") if ".canonical." not in p.name)
    return [p for p in found if ".error." not in p.name]


@pytest.mark.parametrize("source", sources("tive"), ids=lambda p: p.stem)
def test_tive_golden(source: Path) -> None:
    check(source, lambda: tive.decode(source.read_bytes(), CTX))


@pytest.mark.parametrize("source", sources("lorawan"), ids=lambda p: p.stem)
def test_lorawan_golden(source: Path) -> None:
    check(source, lambda: lorawan.decode(source.read_bytes(), CTX))


UPLINKS = ["em300-th", "ts201-threshold-alarm", "ts201-history-alarm"]


@pytest.mark.parametrize("name", UPLINKS)
def test_real_uplinks_decode_as_the_vendor_expects(name: str) -> None:
    folder = samples_dir()
    uplink = (folder / f"ttn-v3-uplink-milesight-{name}.json").read_bytes()
    expected = orjson.loads((folder / f"ttn-v3-uplink-milesight-{name}.expected-decoded.json").read_bytes())
    webhook = parse(uplink)
    assert webhook.uplink_message is not None and webhook.uplink_message.frm_payload is not None
    received = unix_ms(webhook.uplink_message.received_at or webhook.received_at)
    frames = milesight.decode(base64.b64decode(webhook.uplink_message.frm_payload), received)
    assert [{"ts": f.ts, "values": f.values} for f in frames] == expected["telemetry"]
    assert webhook.logger == expected["attributes"]["eui"]
    # and the adapter takes each as readings of that logger
    decoded = lorawan.decode(uplink, CTX)
    assert decoded.error is None and len(decoded.commands) == 1
    assert decoded.commands[0].payload.device_id == expected["attributes"]["eui"]  # type: ignore[attr-defined]


def test_history_records_carry_their_own_time_and_alarm() -> None:
    record = (
        bytes([0x20, 0xCE])
        + (1_794_297_600).to_bytes(4, "little")
        + bytes([0x02])
        + (-67).to_bytes(2, "little", signed=True)
    )
    frames = milesight.decode(record, 1)
    assert frames[1].ts == 1_794_297_600_000 and frames[1].values["temperature"] == -6.7
    found = milesight.measured(frames[1])
    assert found is not None and found.alarm == "threshold_or_mutation_alarm"
    assert milesight.measured(frames[0]) is None  # the current frame says nothing here


def test_a_failed_read_keeps_no_temperature() -> None:
    record = bytes([0x20, 0xCE]) + (1).to_bytes(4, "little") + bytes([0x21]) + (999).to_bytes(2, "little")
    found = milesight.measured(milesight.decode(record, 0)[1])
    assert found is not None and (found.temperature_c, found.alarm) == (None, "sensor_overload")


@pytest.mark.parametrize("payload", [b"\x03", b"\x03\x67\x01", b"\x83\x67\x01\x00", b"\x42\x42\x00"])
def test_payloads_we_cannot_read_are_refused_not_skipped(payload: bytes) -> None:
    with pytest.raises(milesight.PayloadError):
        milesight.decode(payload, 0)


def test_sscc_check_digit() -> None:
    assert is_sscc("306141410000001232")
    assert not is_sscc("306141410000001233")
    assert not is_sscc("30614141000000123")
    assert not is_sscc("\uff13" + "06141410000001232")  # a full-width digit is not a digit here


def test_the_first_key_names_the_shipment_and_every_key_is_a_ref() -> None:
    keys = ShipmentKeys(logger="L1", sscc="306141410000001232", tracking="T1", coi="CHW123426Y8M2FF")
    assert keys.shipment_id == "T1"
    assert ShipmentKeys(logger="L1", sscc="306141410000001232").shipment_id == "306141410000001232"
    assert ShipmentKeys(logger="L1").shipment_id == "L1"
    namespaces = [r.namespace for r in keys.refs("acme")]
    assert namespaces == ["courier:acme:logger", "gs1:sscc", "courier:acme:tracking", "coi"]
    with pytest.raises(ValueError):
        ShipmentKeys(logger="L1", din="12345").refs("acme")


def test_one_command_per_shipment_and_logger_readings_in_time_order() -> None:
    first, second = utcnow(), utcnow()
    a, b = ShipmentKeys(logger="L1"), ShipmentKeys(logger="L2")
    commands = readings_commands(
        "acme", [(a, Reading(at=second)), (b, Reading(at=first)), (a, Reading(at=first))]
    )
    assert [c.payload.device_id for c in commands] == ["L1", "L2"]  # type: ignore[attr-defined]
    assert [r.at for r in commands[0].payload.readings] == [first, second]  # type: ignore[attr-defined]


ALARM_CASES = yaml.safe_load((ROOT / "mappings" / "couriers" / "logger_alarms_test.yaml").read_text())[
    "cases"
]


@pytest.mark.parametrize("case", ALARM_CASES, ids=lambda c: f"{c['table']}:{c['said']}")
def test_logger_alarm_words_map_as_their_cases_say(case: dict[str, str]) -> None:
    assert ALARMS.alarm(case["table"], case["said"]) == case["alarm"]


def test_every_shipper_state_the_wire_allows_is_in_the_table() -> None:
    assert set(get_args(ShipperState)) == set(ALARMS.shipper_states)


def test_a_bad_alarm_table_refuses_to_start(tmp_path: Path) -> None:
    bad = tmp_path / "alarms.yaml"
    bad.write_text("shipper_states: {Low: 'LN2 LOW!'}\nmilesight: {}\n")
    with pytest.raises(ConfigError, match=r"alarms\.yaml"):
        load_alarms(bad)
