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
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Literal, TypeVar

from adapters.hl7v2 import decoding
from adapters.hl7v2.profile import SiteProfile
from gateway.sdk import Decoded, InboundContext, TransientError

T = TypeVar("T")
Mode = Literal["thread", "process"]


def decode(raw: bytes, ctx: InboundContext, profile: SiteProfile | None, log_phi: bool) -> Decoded:
    """In the worker: decode as the adapter does. Only the header and the commands come back,
    never the parsed segments (unpickling those would cost the loop much of what the worker saved
    it: 0.1 s for a 1 MiB message of 19,000 NTE segments). A mapping defect is translated (and
    logged, without the payload unless CGT_LOG_PHI) where it happens: in the worker process."""
    return decoding.decode(raw, ctx, profile, log_phi)


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

    async def decode(
        self, raw: bytes, ctx: InboundContext, profile: SiteProfile | None, log_phi: bool
    ) -> Decoded | None:
        """`raw` decoded off the loop when it is large; None when it is not (the door decodes it)."""
        if len(raw) < self.threshold:
            return None
        return await self.run(len(raw), decode, raw, ctx, profile, log_phi)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
