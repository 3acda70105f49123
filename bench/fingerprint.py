"""Benchmark: what telling a repeat from another message under a used id costs each message (the
adapter's fingerprint and its SHA-256), beside the adapter's own parse of the same message, in the
same run, on one core.

    .venv/bin/python bench/fingerprint.py            # 5 rounds, medians
    .venv/bin/python bench/fingerprint.py --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hl7_parse import ORM, per_second

from adapters.canonical_json.adapter import adapter as canonical_json
from adapters.fhir.adapter import adapter as fhir
from adapters.hl7v2.adapter import adapter as hl7v2
from adapters.hl7v2.fingerprint import fingerprint as hl7_fingerprint
from gateway.canonical.command import fingerprint
from gateway.partners import load_partners
from gateway.registry import InboundContext
from gateway.settings import Settings
from tests.support.builders import envelope_json, place

BUNDLE = (
    Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "fhir" / "order-transaction.json"
).read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    partners = load_partners(Settings().partners_file, env="test")
    hl7v2.configure(Settings(), partners)
    ctx = InboundContext(partners.get("demo-hospital"), "bench", datetime.now(UTC))
    envelope = envelope_json("BENCH-1", place(1))
    fhir_commands = list(fhir.decode(BUNDLE, ctx).commands)
    json_commands = canonical_json.decode(envelope, ctx).commands

    cases: dict[str, Callable[[], object]] = {
        "HL7 ORM^O01: adapter decode (parse + map)": lambda: hl7v2.decode(ORM, ctx),
        "HL7 ORM^O01: fingerprint + SHA-256": lambda: hashlib.sha256(hl7_fingerprint(ORM)).digest(),
        "FHIR order Bundle: adapter parse (+ validate, map)": lambda: fhir.decode(BUNDLE, ctx),
        "FHIR order Bundle: fingerprint + SHA-256": lambda: hashlib.sha256(
            fingerprint(fhir_commands)
        ).digest(),
        "canonical JSON: adapter decode": lambda: canonical_json.decode(envelope, ctx),
        "canonical JSON: fingerprint + SHA-256": lambda: hashlib.sha256(fingerprint(json_commands)).digest(),
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
        "bytes": {"hl7": len(ORM), "fhir": len(BUNDLE), "canonical_json": len(envelope)},
        "results": {
            name: {"median_us": round(1e6 / statistics.median(v), 1), "min_us": round(1e6 / max(v), 1)}
            for name, v in rounds.items()
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['date']}  Python {result['python']}  sum(range(1000)) = {calibration:.1f} µs  {result['bytes']}"
    )
    for name, r in result["results"].items():
        print(f"{name:52} {r['median_us']:>9} µs (best {r['min_us']})")


if __name__ == "__main__":
    main()
