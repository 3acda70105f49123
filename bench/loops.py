"""The event loop a benchmark runs on: uvloop by default, as `cgt-gateway serve` runs (uvicorn
picks it when it is installed); `--loop asyncio` for the plain loop."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
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
