"""What benchmarks share: the event loop they run on (uvloop by default, as `cgt-gateway serve` runs:
uvicorn picks it when it is installed; `--loop asyncio` for the plain loop), the options of a run
in rounds, and the description of the machine a result was measured on."""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import timeit
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import uvloop

CHOICES = ("uvloop", "asyncio")


def chosen(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--loop" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--loop="):
            return arg.split("=", 1)[1]
    return "uvloop"


def run(main: Coroutine[Any, Any, None]) -> None:
    factory = uvloop.new_event_loop if chosen(sys.argv) == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


def rounds_arguments(n: int) -> argparse.Namespace:
    """The options of a benchmark run in interleaved rounds: --n a round, --rounds, --json, --loop."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=n)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--loop", choices=CHOICES, default="uvloop", help="the event loop (serve: uvloop)")
    return parser.parse_args()


def machine(args: argparse.Namespace) -> dict[str, Any]:
    """What a result is measured on: date, Python, loop, and how fast the machine is right now."""
    calibration = min(timeit.repeat("sum(range(1000))", number=10_000, repeat=5)) / 10_000 * 1e6
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "loop": args.loop,
        "calibration_sum_range_1000_us": round(calibration, 1),
    }
