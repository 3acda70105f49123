"""The example dialect's mapping runs its own cases (`mappings/example_webhook/events_test.yaml`),
and a bad events table refuses to start, naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from adapters.example_webhook.adapter import EVENTS_FILE, adapter, load_events
from gateway.canonical.envelope import utcnow
from gateway.errors import ConfigError, GatewayError, NotOurs
from gateway.partners import load_partners
from gateway.sdk import InboundContext
from gateway.settings import Settings

CASES = EVENTS_FILE.with_name("events_test.yaml")
COURIER = load_partners(Settings().partners_file, env="test").get("demo-lab-courier")


def subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list) and len(expected) == len(actual) and all(map(subset, expected, actual))
        )
    return bool(expected == actual)


def cases() -> list[Any]:
    document = yaml.safe_load(CASES.read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["name"]) for case in document["cases"]]


@pytest.mark.parametrize("case", cases())
def test_each_case_maps_as_written(case: dict[str, Any]) -> None:
    ctx = InboundContext(COURIER, "test", utcnow())
    try:
        decoded = adapter.decode(orjson.dumps(case["input"]), ctx)
        error: GatewayError | None = decoded.error
    except GatewayError as exc:
        decoded, error = None, exc
    if "expect" in case:
        assert decoded is not None and error is None, error and error.detail
        assert decoded.message_id == case["input"]["id"]
        commands = [c.model_dump(mode="json") for c in decoded.commands]
        assert subset(case["expect"], commands), commands
    elif "ignored" in case:
        assert isinstance(error, NotOurs) and error.reason == case["ignored"]
    else:
        assert error is not None and type(error).__name__ == case["error"]["type"]
        assert getattr(error, "location", None) == case["error"]["location"]


def test_every_mapped_type_has_a_case() -> None:
    tested = {case.values[0]["input"]["type"] for case in cases()}
    assert set(adapter.events.events) - tested <= {"sample.in_transit", "sample.delayed"}


def test_a_table_naming_no_shipment_event_refuses_to_start(tmp_path: Path) -> None:
    bad = tmp_path / "events.yaml"
    bad.write_text("events:\n  sample.picked_up: order.placed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"example-webhook events .*events\.yaml"):
        load_events(bad)
    bad.write_text("events:\n  sample.picked_up: shipment.teleported\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_events(bad)
