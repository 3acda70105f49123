"""Benchmark: parse + map one ORM^O01 (~1.5 KB) to canonical commands on one core, beside hl7apy's
full parse, python-hl7's parse and a bare split of the same message, measured in the same run.

    .venv/bin/python bench/hl7_parse.py            # 5 rounds, medians
    .venv/bin/python bench/hl7_parse.py --json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hl7
from hl7apy.parser import parse_message

from adapters.hl7v2 import er7
from adapters.hl7v2.adapter import adapter
from gateway.partners import load_partners
from gateway.registry import InboundContext
from gateway.settings import Settings

DOCTOR = "1234567^Doctor^Demo^A^^Dr^MD^^NPI&2.16.840.1.113883.4.6&ISO^L^^^NPI"
ORM = "\r".join(
    [
        "MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500-0500||ORM^O01^ORM_O01|BENCH0001|P|2.5.1|||AL|NE||UNICODE UTF-8",
        "PID|1|Z4455667^^^EPI|MRN0001001^^^DEMOHOSP^MR~CHA999926ABC123^^^COI^RI~Z4455667^^^EPI^EPI||Testpatient^Alpha^Bravo^^^^L~Tp^A^^^^^A|Maiden^^^^^^M|19700101|F||2106-3^White^CDCREC|1 Demo Street^Apt 2^Springfield^IL^62701^USA^H||^PRN^PH^^1^217^5550101~^NET^Internet^alpha@example.org|^WPN^PH^^1^217^5550102|en^English^ISO639|M^Married^HL70002|||||2186-5^Not Hispanic^CDCREC",
        f"PV1|1|O|ONC^101^A^DEMO_HOSPITAL^^^^^Oncology Clinic||||{DOCTOR}|{DOCTOR}||ONC||||1|||{DOCTOR}|OP|V0001234^^^DEMOHOSP^VN|||||||||||||||||||||||||20261102090000",
        "IN1|1|PPO^Demo PPO|INS001^^^DEMOINS|Demo Insurance Co|PO Box 1^^Springfield^IL^62701||^WPN^PH^^1^800^5550199|GRP-42",
        f"ORC|NW|PO-1001^DEMO_EHR||GRP-1001^DEMO_EHR|SC||^^^20261109080000^^R||20261102091000|{DOCTOR}||{DOCTOR}|ONC^^^DEMO_HOSPITAL||^WPN^PH^^1^217^5550103|20261102091000||||DEMO_HOSPITAL^Demo Hospital",
        f"OBR|1|PO-1001^DEMO_EHR||S1234^Demo autologous CAR-T^ISBT128^CART^CAR-T therapy^L|R||20261102091000|||||||||{DOCTOR}|^WPN^PH^^1^217^5550103|||||||||||^^^20261109080000^^R",
        "DG1|1||C83.30^Diffuse large B-cell lymphoma, unspecified site^I10||20260901|A",
        "NTE|1|L|Patient enrolled in the demo programme; bridging therapy completed 2026-10-20.",
        "NTE|2|L|Apheresis slot requested for the week of 9 November \\T\\ product release expected late November.",
        "ZCT|1|Lymphodepletion planned|Fludarabine/cyclophosphamide",
    ]
).encode()


def per_second(fn: Callable[[], object], seconds: float) -> float:
    """Calls a second, running `fn` for about `seconds` (after a warm-up)."""
    for _ in range(20):
        fn()
    n, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(50):
            fn()
        n += 50
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    partners = load_partners(Settings().partners_file, env="test")
    adapter.configure(Settings(), partners)
    ctx = InboundContext(partners.get("demo-hospital"), "bench", datetime.now(UTC))
    text = ORM.decode()
    commands = adapter.decode(ORM, ctx).commands
    assert [c.event for c in commands] == ["order.placed"], commands

    def ours() -> object:
        return adapter.decode(ORM, ctx).commands

    def ours_parse_only() -> object:
        return er7.parse(ORM).get("PID-3.1")

    def hl7apy_full() -> object:
        return parse_message(text, find_groups=True)

    def python_hl7() -> object:
        return hl7.parse(text)

    def bare_split() -> object:
        return [s.split("|") for s in text.split("\r")]

    cases: dict[str, tuple[Callable[[], object], float]] = {
        "ours: parse + map to canonical (order.placed)": (ours, args.seconds),
        "ours: er7.parse only (no mapping)": (ours_parse_only, args.seconds),
        "python-hl7 0.4.5: hl7.parse": (python_hl7, args.seconds),
        "hl7apy 1.3.5: parse_message(find_groups=True)": (hl7apy_full, args.seconds * 2),
        "bare split (segments and fields only)": (bare_split, args.seconds),
    }
    rounds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (fn, seconds) in cases.items():
            rounds[name].append(per_second(fn, seconds))
    calibration = min(timeit.repeat("sum(range(1000))", number=10_000, repeat=5)) / 10_000 * 1e6
    ours_median = statistics.median(rounds["ours: parse + map to canonical (order.placed)"])
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "calibration_sum_range_1000_us": round(calibration, 2),
        "message_bytes": len(ORM),
        "rounds": args.rounds,
        "results": {
            name: {
                "median_per_s": round(statistics.median(values)),
                "min_per_s": round(min(values)),
                "max_per_s": round(max(values)),
                "median_us": round(1e6 / statistics.median(values), 1),
                "ours_is_x_faster": round(ours_median / statistics.median(values), 2),
            }
            for name, values in rounds.items()
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['date']}  Python {result['python']}  sum(range(1000)) = {calibration:.1f} µs  message {len(ORM)} B"
    )
    print(f"{'case':50} {'median/s':>10} {'min':>8} {'max':>8} {'µs/msg':>9} {'ours x':>8}")
    for name, r in result["results"].items():
        print(
            f"{name:50} {r['median_per_s']:>10,} {r['min_per_s']:>8,} {r['max_per_s']:>8,} "
            f"{r['median_us']:>9} {r['ours_is_x_faster']:>8}"
        )


if __name__ == "__main__":
    main()
