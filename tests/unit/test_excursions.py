"""The excursion evaluator, pure, on readings of invented times (the readings' time is its clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.canonical.payloads import LoggerFault, TemperatureExcursion, TemperatureSummary
from gateway.coldchain.classes import default_cold_chain, load_cold_chain
from gateway.coldchain.excursions import ColdState, Evaluation, Finding, Sample
from gateway.entrypoints.bootstrap import bootstrap
from gateway.errors import ConfigError
from gateway.settings import Settings

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
CHAIN = default_cold_chain()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def point(minutes: float, value: float, **more: object) -> Sample:
    return Sample(at(minutes), None, value, value, **more)  # type: ignore[arg-type]


def run(name: str, samples: list[Sample], state: ColdState | None = None) -> tuple[ColdState, list[Finding]]:
    evaluation = Evaluation(
        state or ColdState(),
        CHAIN.classes[name],
        class_name=name,
        shipment_id="SH-1",
        device_id="LOG-1",
        battery_low_pct=CHAIN.battery_low_pct,
        summary_hours=CHAIN.summary_hours,
    )
    return evaluation.run(samples), evaluation.findings


def excursions(findings: list[Finding]) -> list[TemperatureExcursion]:
    return [f.payload for f in findings if isinstance(f.payload, TemperatureExcursion)]


def every(minutes: int, until: int, value: float, start: int = 0) -> list[Sample]:
    return [point(m, value) for m in range(start, until, minutes)]


def test_fresh_in_range_publishes_nothing_but_a_summary_per_window() -> None:
    state, findings = run("fresh", every(10, 5 * 60, 5.0))
    summaries = [f.payload for f in findings if isinstance(f.payload, TemperatureSummary)]
    assert len(summaries) == 1 and summaries[0].readings == 24 and summaries[0].mean_c == 5.0
    assert summaries[0].minutes_out_of_range == 0 and not excursions(findings)
    assert state.out_since is None


@pytest.mark.parametrize(
    ("name", "inside", "outside", "limit"),
    [
        ("fresh", 5.0, 9.0, 8.0),
        ("ambient", 20.0, 27.0, 25.0),
        ("frozen", -80.0, -55.0, -60.0),
        ("cryogenic", -180.0, -140.0, -150.0),
    ],
)
def test_an_excursion_past_the_tolerated_minutes_is_reported_once_and_when_it_ends(
    name: str, inside: float, outside: float, limit: float
) -> None:
    tolerated = CHAIN.classes[name].tolerated_minutes
    out_for = int(tolerated) + 5
    samples = [
        *every(1, 10, inside),
        *every(1, 10 + out_for, outside, 10),
        *every(1, 20 + out_for, inside, 10 + out_for),
    ]
    _, findings = run(name, samples)
    found = excursions(findings)
    assert len(found) == 2
    start, end = found
    assert start.ended_at is None and start.started_at == at(10) and start.limit_c == limit
    assert start.temperature_c == outside and start.temperature_class == name
    assert start.severity == "major"
    assert end.ended_at == at(10 + out_for) and end.duration_s == out_for * 60


def test_a_short_excursion_is_not_reported_but_counts_against_the_budget() -> None:
    fresh = CHAIN.classes["fresh"]
    short = int(fresh.tolerated_minutes) - 5  # 25 minutes: tolerated; three of them pass 60
    samples: list[Sample] = []
    for k in range(3):
        base = k * 60
        samples += [*every(1, base + short, 9.0, base), point(base + short, 5.0)]
    _, findings = run("fresh", samples)
    found = excursions(findings)
    assert len(found) == 2  # the third passes the budget while it lasts, and then ends
    assert found[0].severity == "critical" and found[0].started_at == at(120)
    assert found[1].ended_at == at(120 + short)


def test_beyond_the_critical_margin_is_reported_at_once() -> None:
    _, findings = run("cryogenic", [point(0, -190.0), point(1, -100.0)])
    (found,) = excursions(findings)
    assert found.severity == "critical" and found.duration_s == 0 and found.temperature_c == -100.0


def test_an_interval_report_is_out_when_its_max_passes_the_limit() -> None:
    sample = Sample(at(0), at(45), 3.0, 9.5)  # min 3, max 9.5 over 45 minutes
    _, findings = run("fresh", [sample])
    (found,) = excursions(findings)
    assert found.temperature_c == 9.5 and found.duration_s == 45 * 60


def test_battery_and_the_loggers_own_alarm_are_faults_once_each() -> None:
    samples = [
        point(0, 5.0, battery_pct=50.0),
        point(1, 5.0, battery_pct=15.0),
        point(2, 5.0, battery_pct=14.0),
        point(3, 5.0, alarm="ALARM_CONDITION"),
        point(4, 5.0, alarm="ALARM_CONDITION"),
        point(5, 5.0, alarm="ERROR_CONDITION"),
    ]
    _, findings = run("fresh", samples)
    faults = [f.payload for f in findings if isinstance(f.payload, LoggerFault)]
    assert [f.fault for f in faults] == ["battery_low", "logger_alarm", "sensor_error"]


def test_evaluating_again_from_the_start_publishes_nothing_new() -> None:
    samples = [*every(1, 10, 5.0), *every(1, 50, 9.0, 10), *every(1, 300, 5.0, 50)]
    state, first = run("fresh", samples)
    again_state, again = run("fresh", samples, ColdState(published=state.published))
    assert first and not again
    assert again_state.closed_out_s == state.closed_out_s == 40 * 60


def test_state_round_trips_as_json() -> None:
    state, _ = run("fresh", every(1, 40, 9.0))
    assert ColdState.from_json(state.to_json()) == state and state.out_reported


def test_a_bad_class_file_refuses_to_start_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "classes.yaml"
    bad.write_text(
        "classes:\n  fresh: {code: '2-8C', min_c: 8, max_c: 2, tolerated_minutes: 1, budget_minutes: 1, critical_margin_c: 1}\n"
    )
    with pytest.raises(ConfigError, match=str(bad)):
        load_cold_chain(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        "classes:\n  fresh: {code: '2-8C', min_c: 2, max_c: 8, tolerated_minutes: 1, budget_minutes: 1, critical_margin_c: 1}\n"
        "products:\n  - {system: isbt128, code: S1, inbound: fresh, outbound: tepid}\n"
    )
    with pytest.raises(ConfigError, match="tepid"):
        load_cold_chain(unknown)


def test_the_gateway_refuses_to_start_with_a_bad_class_file(tmp_path: Path) -> None:
    bad = tmp_path / "classes.yaml"
    bad.write_text("classes: {}\n")
    settings = Settings(
        env="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db", temperature_classes_file=bad
    )
    with pytest.raises(ConfigError, match=f"temperature classes {bad}"):
        bootstrap(settings)
