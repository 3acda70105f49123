"""Benchmark: what the manufacturing rules cost each command (docs/mes-rules.md), beside the
lifecycle's own apply of the same event, in the same run, on one core.

    .venv/bin/python bench/mes_rules.py            # 5 rounds, medians
    .venv/bin/python bench/mes_rules.py --json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hl7_parse import per_second

from gateway.canonical.apply import apply_event
from gateway.canonical.catalogue import spec_for
from gateway.canonical.order import TherapyOrder
from gateway.identity.receipt import receipt_findings
from gateway.service.mes_rules import configured_rules
from gateway.service.release import release_refusal
from gateway.service.risk import news

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TESTS = ("sterility", "mycoplasma", "endotoxin", "viability", "car_expression", "potency")


def order(status: str, **parts: Any) -> TherapyOrder:
    return TherapyOrder.model_validate(
        {
            "order_id": "o1",
            "coi": "CHA999926ABC123",
            "patient_id": "p1",
            "status": status,
            "product": {"code": "S9999"},
            "ordering_site": {"id": "demo-hospital"},
            "collection": {"din": "A999921123456"},
            "infusion": {"planned_at": T0 + timedelta(days=25)},
            "created_at": T0,
            "updated_at": T0,
            **parts,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rules = configured_rules()
    collected = order("collected")
    making = order(
        "in_manufacturing",
        manufacturing={
            "started_at": T0,
            "manufacturer": {"id": "demo-manufacturer"},
            "qc": dict.fromkeys(TESTS, "pass"),
        },
    )
    received = spec_for("manufacturing.material_received").payload.model_validate(
        {
            "scanned_coi": "CHA999926ABC123",
            "din": "A9999211234563",
            "temperature_c": -160.2,
            "condition": "intact",
        }
    )
    released = spec_for("manufacturing.released").payload.model_validate({"batch_id": "B1"})
    step = spec_for("manufacturing.step_completed").payload.model_validate(
        {"batch_id": "B1", "step": "expansion"}
    )
    after_step = apply_event(making, "manufacturing.step_completed", step, T0)

    cases: dict[str, Callable[[], object]] = {
        "receipt: lifecycle apply": lambda: apply_event(
            collected, "manufacturing.material_received", received, T0
        ),
        "receipt: verification (scans, MOD 37-2)": lambda: receipt_findings(collected, received),
        "release: lifecycle apply": lambda: apply_event(making, "manufacturing.released", released, T0),
        "release: QC gate (6 tests)": lambda: release_refusal(making, rules.release),
        "any order event: lifecycle apply (a step)": lambda: apply_event(
            making, "manufacturing.step_completed", step, T0
        ),
        "any order event: schedule-risk projection": lambda: news(after_step, rules.risk, T0),
    }
    rounds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            rounds[name].append(per_second(fn, args.seconds))
    calibration = min(timeit.repeat("sum(range(1000))", number=10_000, repeat=5)) / 10_000 * 1e6
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "calibration_sum_range_1000_us": round(calibration, 2),
        "results": {
            name: {"median_us": round(1e6 / statistics.median(v), 1), "min_us": round(1e6 / max(v), 1)}
            for name, v in rounds.items()
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['date']}  Python {result['python']}  sum(range(1000)) = {calibration:.1f} µs")
    for name, r in result["results"].items():
        print(f"{name:45} {r['median_us']:>9} µs (best {r['min_us']})")


if __name__ == "__main__":
    main()
