"""One simulation from end to end: plan, run, read back, judge."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.simulate.config import Cast
from gateway.simulate.model import ALL_FAULTS, Boundary, Fault
from gateway.simulate.plan import plan
from gateway.simulate.run import run
from gateway.simulate.senders import Senders
from gateway.simulate.verdict import Report, fetch_orders, judge
from gateway.simulate.wire import Encoder

JOURNEY = timedelta(days=30)  # about as long as one journey runs, order to infusion


@dataclass(frozen=True)
class Options:
    journeys: int
    base_urls: tuple[str, ...] = ("http://127.0.0.1:8080",)  # one per replica
    mllp: tuple[tuple[str, int], ...] = (("127.0.0.1", 2575),)
    operator_key: str = "demo-operator-key"
    seed: int = 1
    run: int | None = None  # 0-99; default: from the seed and the clock
    speed: float = 0.0  # simulated seconds per real second; 0: a journey in about 10 s
    rate: float = 0.0  # messages a second at most; 0: as fast as the gateway answers
    fault_rate: float = 0.1
    faults: tuple[Fault, ...] = ALL_FAULTS
    spread_days: float = 28.0  # journeys start over this many simulated days
    concurrency: int = 64
    mllp_connections: int = 4
    batch_hours: float = 6.0
    settle_seconds: float = 2.0  # after the last answer, before reading the orders back
    progress: bool = False
    amqp: str | None = None  # the broker: odd journeys' MES events go to the manufacturer's queue


async def simulate(options: Options, cast: Cast, during: Callable[[float], object] | None = None) -> Report:
    run_number = options.run if options.run is not None else random.Random().randrange(100)
    start = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
    journeys = plan(
        options.journeys,
        cast.parties,
        seed=options.seed,
        run=run_number,
        start=start,
        spread=timedelta(days=options.spread_days),
        fault_rate=options.fault_rate,
        kinds=options.faults,
        batch_hours=options.batch_hours,
    )
    if options.amqp:  # half the manufacturers' messages over AMQP, half over HTTP
        for j in journeys[1::2]:
            for step in j.steps:
                if step.boundary is Boundary.mes:
                    step.boundary = Boundary.mes_amqp
    total = JOURNEY + timedelta(days=options.spread_days)
    speed = options.speed or total.total_seconds() / 10.0
    sites = {p.site for p in cast.parties}
    senders = Senders(
        list(options.base_urls),
        {site: list(options.mllp) for site in sites},
        connections=options.mllp_connections,
        amqp_url=options.amqp,
    )
    try:
        answers, seconds = await run(
            journeys,
            Encoder(cast.credentials, start),
            senders,
            speed=speed,
            rate=options.rate,
            concurrency=options.concurrency,
            show=options.progress,
            during=during,
        )
    finally:
        await senders.close()
    await asyncio.sleep(options.settle_seconds)
    orders = await fetch_orders(options.base_urls, options.operator_key, [j.ids.coi for j in journeys])
    report = judge(journeys, answers, orders, seconds, senders.resends)
    return report
