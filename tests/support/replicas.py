"""Replicas under the simulator: several `cgt-gateway serve` processes on one database and one
broker share the load (HTTP requests and MLLP connections spread over them; their relays compete
for the outbox), one is killed with SIGKILL mid-run, and the run must still pass the mix-up audit
with nothing lost: every acknowledged message applied once, every event published (a consumer
bound to `#` sees each at least once; it de-duplicates on the CloudEvent id to consume it once).
Used by tests/e2e/test_replicas.py (small, in `make test`) and bench/replicas.py (larger)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx

from gateway.bus.topology import declare_consumer_queue
from gateway.simulate.config import Cast
from gateway.simulate.model import ALL_FAULTS
from gateway.simulate.session import Options, simulate
from gateway.simulate.verdict import Report
from tests.support.faults import Gateway, settle
from tests.support.private_broker import PrivateBroker, free_port


@dataclass
class ReplicaRun:
    report: Report
    replicas: int
    killed: int | None = None  # which replica, at what share of the messages sent
    killed_at: float | None = None
    broker_restarted_at: float | None = None  # the broker stopped at this share, started again
    events_on_timelines: int = 0  # published kinds only (quiet events never are)
    published_unique: int = 0
    deliveries: int = 0
    missing: list[str] = field(default_factory=list)  # on a timeline, never delivered

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.missing

    def lines(self) -> list[str]:
        kill = (
            f"replica {self.killed} killed (SIGKILL) at {self.killed_at:.0%} of the messages"
            if self.killed is not None and self.killed_at is not None
            else "no replica killed"
        )
        broker = (
            f"; broker stopped at {self.broker_restarted_at:.0%} and started again"
            if self.broker_restarted_at is not None
            else ""
        )
        return [
            f"{self.replicas} replicas, {kill}{broker}",
            *self.report.lines(),
            f"events: {self.events_on_timelines} on the orders' timelines, {self.published_unique} "
            f"delivered ({self.deliveries} deliveries: at least once), {len(self.missing)} never delivered",
        ]


async def replica_run(
    *,
    database_url: str,
    amqp_url: str,
    log_dir: Path,
    cast: Cast,
    journeys: int,
    replicas: int = 3,
    kill_at: float | None = 0.4,
    seed: int = 5,
    run: int = 9,
    fault_rate: float = 0.2,
    broker: PrivateBroker | None = None,
    restart_broker_at: float | None = None,
    broker_down_s: float = 5.0,
) -> ReplicaRun:
    """`broker`: a private RabbitMQ that `amqp_url` names, stopped at `restart_broker_at` of the
    messages sent and started again `broker_down_s` later (the gateways keep taking messages
    into their outboxes meanwhile)."""
    gateways = [Gateway(log_dir, database_url, amqp_url, free_port(), free_port()) for _ in range(replicas)]
    # The audit queue is declared before and read after, each on a connection of its own: a
    # broker restarted in between keeps a durable queue's messages.
    audit_queue = f"replicas.audit.{run}"
    async with _queue(amqp_url, audit_queue) as queue:
        await queue.purge()
    result = ReplicaRun(Report(), replicas)
    try:
        for gateway in gateways:  # one after the other: the first one migrates
            gateway.start()
        victim = gateways[1] if replicas > 1 and kill_at is not None else None

        restarts: list[asyncio.Task[None]] = []

        async def restart(private: PrivateBroker) -> None:
            await asyncio.to_thread(private.stop)
            await asyncio.sleep(broker_down_s)
            await asyncio.to_thread(private.start)

        def during(done: float) -> None:
            if victim is not None and result.killed is None and kill_at is not None and done >= kill_at:
                victim.kill()
                result.killed, result.killed_at = 1, done
            if broker and restart_broker_at is not None and not restarts and done >= restart_broker_at:
                result.broker_restarted_at = done
                restarts.append(asyncio.create_task(restart(broker)))

        options = Options(
            journeys=journeys,
            base_urls=tuple(g.url for g in gateways),
            mllp=tuple(("127.0.0.1", g.mllp_port) for g in gateways),
            fault_rate=fault_rate,
            faults=ALL_FAULTS,
            seed=seed,
            run=run,
            settle_seconds=0.0,
            amqp=amqp_url,
        )
        survivor = gateways[0]
        report = await simulate(options, cast, during=during)
        for task in restarts:
            await task
        await settle(survivor.url, timeout=120)
        # read back again after the outbox drained: the events the orders hold
        result.report = report
        timelines = await _timelines(options, survivor.url, report)
        async with _queue(amqp_url, audit_queue) as queue:
            delivered = await _drain(queue)
            await queue.delete(if_unused=False, if_empty=False)
        result.published_unique, result.deliveries = len(delivered), sum(delivered.values())
        expected = [e["id"] for e in timelines if not str(e.get("type", "")).endswith("readings_reported")]
        result.events_on_timelines = len(expected)
        result.missing = [e for e in expected if e not in delivered]
        return result
    finally:
        for gateway in gateways:
            gateway.stop()


@asynccontextmanager
async def _queue(url: str, name: str) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    connection = await aio_pika.connect(url)
    try:
        yield await declare_consumer_queue(await connection.channel(), name, ["#"], delivery_limit=5)
    finally:
        await connection.close()


async def _timelines(options: Options, url: str, report: Report) -> list[dict[str, Any]]:
    """The id and type of every event on the orders' timelines, as the survivor shows them."""
    found: list[dict[str, Any]] = []
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=60, headers={"X-API-Key": options.operator_key}) as client:

        async def one(coi: str) -> None:
            async with gate:
                response = await client.get(f"{url}/api/orders/{coi}")
            if response.status_code == 200:
                timeline = response.json()["timeline"]
                found.extend({"id": e["id"], "type": e.get("type", "")} for e in timeline)

        await asyncio.gather(*(one(coi) for coi in report.cois))
    return found


async def _drain(queue: aio_pika.abc.AbstractQueue, quiet_for: float = 2.0) -> dict[str, int]:
    """Deliveries per CloudEvent id until the queue has been quiet for `quiet_for` seconds."""
    seen: dict[str, int] = {}
    quiet = time.monotonic()
    while time.monotonic() - quiet < quiet_for:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        seen[message.message_id or ""] = seen.get(message.message_id or "", 0) + 1
        quiet = time.monotonic()
    return seen
