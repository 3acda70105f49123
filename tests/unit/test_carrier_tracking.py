"""The carrier-tracking dialect, pure: each code table runs its own cases
(mappings/couriers/status/*_test.yaml), every fixture of every carrier shape decodes to its golden
file (tests/fixtures/couriers/<shape>/, CGT_REGOLD=1 rewrites them), an unknown code is kept and
reported, never guessed, and codes stay strings however a table is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from adapters.couriers.tracking.adapter import POLL, CarrierTracking
from adapters.couriers.tracking.codes import TABLES, load_table, load_tables
from adapters.couriers.tracking.mapping import UNKNOWN_STATUS, UnknownStatusCode
from adapters.couriers.tracking.shapes import SHAPES
from gateway.canonical.envelope import utcnow
from gateway.errors import ConfigError, NotOurs
from gateway.outcome import Outcome
from gateway.partners import Partners, load_partners
from gateway.sdk import InboundContext
from tests.support import golden
from tests.support.carriers import with_carriers

FIXTURES = Path(__file__).parents[1] / "fixtures" / "couriers"
CASE_FILES = sorted(TABLES.glob("*_test.yaml"))


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> tuple[CarrierTracking, Partners]:
    settings = with_carriers(tmp_path_factory.mktemp("carriers"))
    partners = load_partners(settings.partners_file, env="test")
    tracking = CarrierTracking(load_tables())
    tracking.configure(settings, partners)
    return tracking, partners


def table_cases() -> list[Any]:
    found = []
    for path in CASE_FILES:
        for i, case in enumerate(yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]):
            found.append(pytest.param(path.stem.removesuffix("_test"), case, id=f"{path.stem}-{i}"))
    return found


@pytest.mark.parametrize(("carrier", "case"), table_cases())
def test_each_code_table_maps_its_cases(carrier: str, case: dict[str, Any]) -> None:
    table = load_tables()[carrier]
    expected = None if case["expect"] == "unknown" else case["expect"]
    assert table.resolve({k: str(v) for k, v in case["codes"].items()}) == expected


def test_every_table_has_cases_and_every_shape_a_table() -> None:
    tables = load_tables()
    assert {p.stem.removesuffix("_test") for p in CASE_FILES} == set(tables)
    assert {shape.carrier for shape in SHAPES.values()} <= set(tables)


def test_codes_stay_strings_even_unquoted(tmp_path: Path) -> None:
    path = tmp_path / "ups.yaml"  # UPS's own spec writes 021 unquoted: YAML 1.1 reads octal 17
    path.write_text(
        "carrier: ups\nlookup: [description_code]\ndescription_code:\n  021: shipment.in_transit\n"
    )
    table = load_table(path)
    assert table.resolve({"description_code": "021"}) == "shipment.in_transit"
    assert table.resolve({"description_code": "17"}) is None


def test_a_table_naming_no_shipment_event_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "ups.yaml"
    path.write_text("carrier: ups\nlookup: [type]\ntype:\n  D: order.cancelled\n")
    with pytest.raises(ConfigError, match=r"ups\.yaml.*not a shipment update"):
        load_table(path)


def fixtures() -> list[Any]:
    return [
        pytest.param(p, id=f"{p.parent.name}/{p.name}")
        for p in sorted(FIXTURES.glob("*/*.json"))
        if ".canonical" not in p.name and ".error" not in p.name
    ]


@pytest.mark.parametrize("source", fixtures())
def test_each_fixture_decodes_to_its_golden_file(
    source: Path, configured: tuple[CarrierTracking, Partners]
) -> None:
    tracking, partners = configured
    shape = source.parent.name
    if not source.name.endswith(".poll.json"):
        ctx = InboundContext(partners.get(f"test-{shape}"), "http", utcnow())
        golden.check(source, lambda: tracking.decode(source.read_bytes(), ctx))
        return
    poll = SHAPES[shape].poll
    assert poll is not None
    partner = partners.get("test-ups-api" if shape == "ups" else f"test-{shape}")
    ctx = InboundContext(partner, POLL, utcnow())
    events = poll(orjson.loads(source.read_bytes()))
    actual = [
        golden.canonical(lambda e=e: tracking.decode(e.model_dump_json().encode(), ctx)) for e in events
    ]
    expected = source.with_name(source.name.replace(".poll.json", ".poll.canonical.json"))
    if golden.REGOLD:
        expected.write_bytes(orjson.dumps(actual, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    assert actual == orjson.loads(expected.read_bytes())


def test_an_unknown_code_is_kept_reported_and_never_guessed(
    configured: tuple[CarrierTracking, Partners],
) -> None:
    tracking, partners = configured
    ctx = InboundContext(partners.get("test-ups"), "http", utcnow())
    decoded = tracking.decode((FIXTURES / "ups" / "alert_unknown_code.json").read_bytes(), ctx)
    assert isinstance(decoded.error, UnknownStatusCode) and not decoded.commands
    assert decoded.error.http_status == 202  # accepted: sending it again would not help
    assert decoded.error.public_message == "not applied: unknown status code D/ZZ/999"
    labels = {"partner": "test-ups", "carrier": "ups", "code": "D/ZZ/999"}
    before = UNKNOWN_STATUS.labels(**labels)._value.get()
    outcome = Outcome.of_error("rejected", decoded.error, "inbound-1", "test-ups", decoded.message_id)
    body = orjson.loads(tracking.answer(outcome, decoded))
    assert body["status"] == 202 and body["outcome"] == "rejected" and "D/ZZ/999" in body["detail"]
    assert UNKNOWN_STATUS.labels(**labels)._value.get() == before + 1


def test_a_label_printed_is_acknowledged_and_ignored(configured: tuple[CarrierTracking, Partners]) -> None:
    tracking, partners = configured
    ctx = InboundContext(partners.get("test-ups"), "http", utcnow())
    decoded = tracking.decode((FIXTURES / "ups" / "alert_label_created.json").read_bytes(), ctx)
    assert isinstance(decoded.error, NotOurs) and decoded.error.reason == "status_not_tracked"


def test_a_polled_shape_sent_as_a_webhook_is_refused(configured: tuple[CarrierTracking, Partners]) -> None:
    tracking, partners = configured
    ctx = InboundContext(partners.get("test-dhl"), "http", utcnow())
    decoded = tracking.decode((FIXTURES / "dhl" / "unified.poll.json").read_bytes(), ctx)
    assert type(decoded.error).__name__ == "UnsupportedMessage"


def test_the_same_event_has_the_same_key_by_webhook_and_by_poll(
    configured: tuple[CarrierTracking, Partners],
) -> None:
    tracking, partners = configured
    alert = tracking.decode(
        (FIXTURES / "ups" / "alert_delivered.json").read_bytes(),
        InboundContext(partners.get("test-ups"), "http", utcnow()),
    )
    assert alert.message_id == "ups:1Z999AA10000000101:2026-11-10T13:50:04+00:00:D/FS/011"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from datetime import UTC, datetime

    from adapters.couriers.tracking.fetch import retry_after

    now = datetime(2026, 11, 9, 12, 0, tzinfo=UTC)
    assert retry_after("120", now) == 120.0
    assert retry_after("Mon, 09 Nov 2026 12:02:00 GMT", now) == 120.0
    assert retry_after("Mon, 09 Nov 2026 11:00:00 GMT", now) == 0.0  # past: now
    assert retry_after("soon", now) is None and retry_after(None, now) is None


def test_a_request_names_the_tracking_number_escaped_and_is_conditional() -> None:
    from adapters.couriers.tracking.fetch import request_for
    from adapters.couriers.tracking.profile import PollApi

    api = PollApi(url="https://c.test/t/{tracking_number}", method="POST", body='{"n": "{tracking_number}"}')
    request = request_for(api, 'A/1"B', {"Key": "k"}, '"v1"', "Mon, 09 Nov 2026 12:00:00 GMT")
    assert str(request.url) == "https://c.test/t/A%2F1%22B"
    assert orjson.loads(request.content) == {"n": 'A/1"B'}
    assert request.headers["if-none-match"] == '"v1"' and request.headers["key"] == "k"
    assert request.headers["if-modified-since"] == "Mon, 09 Nov 2026 12:00:00 GMT"


def test_a_poll_header_without_its_secret_refuses_to_start(
    configured: tuple[CarrierTracking, Partners],
) -> None:
    from types import SimpleNamespace

    from adapters.couriers.tracking.poller import TrackingPoller

    tracking, partners = configured
    production = Partners(tuple(partners), production=True)  # no demo defaults, no env: unset
    runtime = SimpleNamespace(partners=production)
    with pytest.raises(ConfigError, match="test-dhl's poll headers DHL-API-Key are unset"):
        TrackingPoller.for_runtime(runtime, tracking, tracking.profiles, tracking.tables)
    polled = TrackingPoller.for_runtime(
        SimpleNamespace(partners=partners), tracking, tracking.profiles, tracking.tables
    )
    assert sorted(p.partner.id for p in polled.polled) == ["test-dhl", "test-fedex", "test-ups-api"]
