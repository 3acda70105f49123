"""Running a plan against a gateway: every journey walks its steps in order (each waits for the
answer to the one before, as a real party does), at its simulated time divided by the speed-up,
under a global message rate; a progress line while it runs."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from gateway.simulate.model import Boundary, Expect, Journey, Step
from gateway.simulate.senders import Answer, Senders
from gateway.simulate.wire import Encoder


def held(answer: Answer) -> bool:
    """Refused only because its order is on hold (a receipt mismatch holds the orders it names)."""
    return answer.got == "refused" and "on_hold" in answer.detail and answer.step.expect is Expect.applied


class Pace:
    """At most `rate` messages a second overall (0: as fast as the gateway answers)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            if self.next > now:
                await asyncio.sleep(self.next - now)
            self.next = max(self.next, now) + self.interval


@dataclass
class Progress:
    total: int
    out: Callable[[str], object] | None = None
    sent: int = 0
    journeys_done: int = 0
    began: float = field(default_factory=time.monotonic)
    shown: float = 0.0

    def tick(self, journeys: int, force: bool = False) -> None:
        now = time.monotonic()
        if self.out is None or (not force and now - self.shown < 0.5):
            return
        self.shown = now
        done = self.sent / max(self.total, 1)
        bar = "#" * int(done * 30)
        rate = self.sent / max(now - self.began, 1e-9)
        self.out(
            f"\r[{bar:<30}] {self.sent}/{self.total} messages, {self.journeys_done}/{journeys} journeys, "
            f"{rate:,.0f} msg/s "
        )


async def run(
    journeys: list[Journey],
    encoder: Encoder,
    senders: Senders,
    *,
    speed: float,
    rate: float = 0.0,
    concurrency: int = 64,
    show: bool = False,
    during: Callable[[float], object] | None = None,
) -> tuple[list[Answer], float]:
    """Every answer, and the wall time. `speed`: simulated seconds per real second. `during(t)`
    is called about every second with the fraction of messages sent (for faults mid-run)."""
    answers: list[Answer] = []
    total = sum(len(j.steps) for j in journeys)
    progress = Progress(total, (lambda s: sys.stderr.write(s)) if show else None)
    pace, gate = Pace(rate), asyncio.Semaphore(concurrency)
    sim0: datetime = min(j.start for j in journeys)
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def walk(j: Journey) -> None:
        for step in j.steps:
            due = t0 + ((j.start + step.at) - sim0).total_seconds() / speed
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            async with gate:
                await pace.wait()
                answer = await senders.send(partial(encoder.encode, step, j.start, j.parties.product))
                tries = 0
                while held(answer) and tries < 3:  # operations staff clear the hold, the step goes again
                    tries += 1
                    resume = Step(
                        j.n,
                        step.at,
                        Boundary.mes,
                        j.parties.manufacturer,
                        "order.resumed",
                        j.ids,
                        key=f"{step.key}-R{tries}",
                    )
                    answers.append(
                        await senders.send(partial(encoder.encode, resume, j.start, j.parties.product))
                    )
                    answer = await senders.send(partial(encoder.encode, step, j.start, j.parties.product))
                answers.append(answer)
            progress.sent += 1
            progress.tick(len(journeys))
        progress.journeys_done += 1

    async def watch() -> None:
        while True:
            await asyncio.sleep(1.0)
            if during is not None:
                during(progress.sent / max(total, 1))
            progress.tick(len(journeys))

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.gather(*(walk(j) for j in journeys))
    finally:
        watcher.cancel()
    progress.tick(len(journeys), force=True)
    if show:
        sys.stderr.write("\n")
    return answers, loop.time() - t0
