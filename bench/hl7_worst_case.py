"""Benchmark: parse + map of worst-case 1 MiB HL7 frames, beside a bare split of the same bytes.

    .venv/bin/python bench/hl7_worst_case.py                       # this tree
    .venv/bin/python bench/hl7_worst_case.py --tree /tmp/hl7-base   # another checkout, same script

The frames, both just under the default 1 MiB frame limit:
- `pid3`: one ORM^O01 whose PID-3 holds ~40,000 MR repetitions (the message that once cost 14.5 s
  of CPU on the event loop: identifier matching was a list search, quadratic);
- `pid3 uncapped`: the same with the profile's repetition cap lifted (this tree only): what the
  identifier matching itself costs;
- `groups`: one ORM^O01 of ~1,000 segments, ORC/OBR therapy groups each padded with an NTE, the
  most mapping work a message within the caps can ask for.
"parse + map" is the adapter's `decode` (`parse` + `to_canonical` on an older tree) with the demo site's profile, whether it
ends in commands or in a refusal. Each case runs in the same process, one after the other.
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

LIMIT = 1024 * 1024
MSH = "MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|BENCH{n}|P|2.5.1"


def pid3_frame() -> bytes:
    head = MSH.format(n=1) + "\rPID|1||"
    tail = "||Testpatient^Bench||19700101|F\rORC|NW|PO-1\rOBR|1|PO-1||S1234^Demo^ISBT128\r"
    reps, size, n = [], len(head) + len(tail), 0
    while True:
        rep = f"MRN{n:07d}^^^DEMOHOSP^MR"
        if size + len(rep) + 1 > LIMIT - 64:
            break
        reps.append(rep)
        size += len(rep) + 1
        n += 1
    return (head + "~".join(reps) + tail).encode()


def groups_frame() -> bytes:
    lines = [MSH.format(n=2), "PID|1||MRN0000001^^^DEMOHOSP^MR||Testpatient^Bench||19700101|F"]
    remark = "NTE|1||" + "x" * (LIMIT // 340)
    for n in range(1, (1000 - len(lines)) // 3 + 1):
        lines += [f"ORC|NW|PO-{n:06d}", f"OBR|1|PO-{n:06d}||S1234^Demo^ISBT128", remark]
    raw = ("\r".join(lines) + "\r").encode()
    assert len(raw) <= LIMIT, len(raw)
    return raw


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.process_time()
        fn()
        out.append(time.process_time() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))

    from adapters.hl7v2.adapter import Hl7v2
    from gateway.errors import GatewayError
    from gateway.partners import load_partners
    from gateway.registry import InboundContext
    from gateway.settings import Settings

    adapter = Hl7v2()
    partners = load_partners(Settings().partners_file, env="test")
    if hasattr(adapter, "configure"):  # this tree: profiles loaded as at start-up
        adapter.configure(Settings(), partners)
    partner = partners.get("demo-hospital")
    ctx = InboundContext(partner, "bench", datetime.now(UTC))
    cases = [("pid3", pid3_frame(), adapter), ("groups", groups_frame(), adapter)]
    profile = adapter.profile_for(partner)
    if hasattr(profile, "limits"):  # this tree: the same PID-3 with the caps lifted, to time matching alone
        lifted = profile.model_copy(
            update={"limits": profile.limits.model_copy(update={"repetitions": 10**6})}
        )
        uncapped = Hl7v2()
        uncapped.profile_for = lambda partner: lifted  # type: ignore[method-assign]
        cases.insert(1, ("pid3 uncapped", cases[0][1], uncapped))
    results: dict[str, dict[str, object]] = {}
    for name, raw, adapter in cases:

        def ours(raw: bytes = raw, adapter: Hl7v2 = adapter) -> str:
            try:
                if hasattr(adapter, "decode"):  # this tree's contract
                    decoded = adapter.decode(raw, ctx)
                    if decoded.error is not None:
                        raise decoded.error
                    return f"{len(decoded.commands)} commands"
                return f"{len(adapter.to_canonical(adapter.parse(raw, ctx), ctx))} commands"
            except GatewayError as exc:
                return f"{type(exc).__name__} {getattr(exc, 'code', '')}: {exc.public_message[:60]}"

        def split(raw: bytes = raw) -> object:
            return [s.split("|") for s in raw.decode().split("\r")]

        outcome = ours()
        mapped, bare = timed(ours, args.rounds), timed(split, args.rounds)
        results[name] = {
            "bytes": len(raw),
            "outcome": outcome,
            "parse_map_ms_median": round(statistics.median(mapped) * 1000, 2),
            "parse_map_ms_max": round(max(mapped) * 1000, 2),
            "bare_split_ms_median": round(statistics.median(bare) * 1000, 2),
        }
    calibration = min(timeit.repeat("sum(range(1000))", number=10_000, repeat=5)) / 10_000 * 1e6
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "tree": str(args.tree),
        "python": platform.python_version(),
        "calibration_sum_range_1000_us": round(calibration, 2),
        "rounds": args.rounds,
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{report['date']}  {args.tree}  Python {report['python']}  sum(range(1000)) = {calibration:.1f} µs"
    )
    for name, r in results.items():
        print(
            f"{name:14} {r['bytes']:>9,} B  parse+map {r['parse_map_ms_median']:>10} ms (max {r['parse_map_ms_max']})"
            f"  bare split {r['bare_split_ms_median']} ms  -> {r['outcome']}"
        )


if __name__ == "__main__":
    main()
