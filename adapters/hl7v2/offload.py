"""Parsing large frames off the event loop, so that one sender's heavy message does not hold up
every other sender (and /health) on the loop they share.

`process` (the default): one worker process, spawned at the first large frame, on the machine's
other core; the message's bytes go there and its mapped commands come back pickled. `thread`:
one worker thread; the loop keeps running, but the GIL passes between the two threads only every
`sys.getswitchinterval()` (5 ms), so the loop waits its turn many times an ACK. Measured in
bench/hl7_isolation.py (bench/results/hl7.md): beside a 1 MiB worst case, another sender's p50
ACK stayed at its usual ~4 ms with the process and rose to ~28 ms with the thread. One worker
either way: more would only take turns at the GIL or at the cores; large frames queue there.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from gateway.canonical.command import Command
from gateway.errors import TransientError
from gateway.registry import Adapter, Example, ExternalMessage, InboundContext
from gateway.service.outcome import Outcome

if TYPE_CHECKING:
    from adapters.hl7v2.adapter import Answering, Hl7v2

T = TypeVar("T")
Mode = Literal["thread", "process"]


class Prepared:
    """The adapter for one message parsed and mapped beforehand, off the event loop: `parse`
    hands back that result (or raises its error), the rest is the message's `Answering`."""

    def __init__(self, answering: Answering, result: ExternalMessage | Exception) -> None:
        self.answering, self.result = answering, result
        self.name, self.dialect, self.content_type = answering.name, answering.dialect, answering.content_type

    def parse(self, raw: bytes, ctx: InboundContext) -> ExternalMessage:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    def to_canonical(self, msg: ExternalMessage, ctx: InboundContext) -> list[Command]:
        return self.answering.to_canonical(msg, ctx)

    def ack(self, outcome: Outcome) -> bytes:
        return self.answering.ack(outcome)

    def examples(self) -> Sequence[Example]:
        return self.answering.examples()


@cache
def _adapter(profiles: Path) -> Hl7v2:
    from adapters.hl7v2.adapter import Hl7v2  # in the worker process: made once, profiles cached

    return Hl7v2(profiles)


def parse(profiles: Path, raw: bytes, ctx: InboundContext) -> ExternalMessage | Exception:
    """Parse and map as the adapter does; an error is handed back, for accept() to raise."""
    try:
        return _slim(_adapter(profiles).parse(raw, ctx))
    except Exception as exc:  # accept() raises and translates it as it always does
        return exc


def _slim(result: ExternalMessage) -> ExternalMessage:
    """Only the header and the mapped commands are used after parse: the message's segments are
    left behind (MSH kept), or unpickling them would cost the loop much of what the worker saved
    it (0.1 s for a 1 MiB message of 19,000 NTE segments; 6 KB instead of 1.7 MB)."""
    from adapters.hl7v2.adapter import Parsed
    from adapters.hl7v2.er7 import Message

    content = result.content
    if not isinstance(content, Parsed):
        return result
    message = content.message
    msh_only = Message(message.delimiters, (message.msh,), message.charset)
    return replace(result, content=replace(content, message=msh_only))


class Offload:
    def __init__(self, mode: Mode, threshold: int) -> None:
        self.mode, self.threshold = mode, threshold
        self._executor: Executor | None = None

    def _pool(self) -> Executor:
        if self._executor is None:
            if self.mode == "process":
                spawn = multiprocessing.get_context("spawn")  # never fork a process that has threads
                self._executor = ProcessPoolExecutor(max_workers=1, mp_context=spawn)
            else:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mllp-parse")
        return self._executor

    async def run(self, size: int, work: Callable[..., T], *args: object) -> T:
        """`work(*args)` off the loop when the frame is large, else here (a hop costs more than
        parsing a message of ordinary size). In process mode `work` and `args` must pickle."""
        if size < self.threshold:
            return work(*args)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool(), work, *args)
        except BrokenProcessPool:  # the worker died (killed, out of memory): a new one next time
            self._executor = None
            raise TransientError(detail="the parse worker process died") from None

    async def adapter(self, answering: Answering, profiles: Path, raw: bytes, ctx: InboundContext) -> Adapter:
        """The adapter `accept()` should use for `raw`: parsed beforehand when `raw` is large."""
        if len(raw) < self.threshold:
            return answering
        return Prepared(answering, await self.run(len(raw), parse, profiles, raw, ctx))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
