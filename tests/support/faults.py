"""Fault scenarios against running gateway processes: load from several senders, a fault in the
middle (a gateway killed with SIGKILL, the broker stopped, the database locked), then the count of
what was acknowledged, stored and published. Used by tests/e2e/test_faults.py (small, in every
`make test`) and by bench/faults.py (larger, with the counts printed)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import httpx
from sqlalchemy import func, select

from gateway.bus.topology import declare_consumer_queue
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from tests.support.builders import envelope_json, place

HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}


@dataclass
class Report:
    scenario: str
    sent: int = 0
    acked: int = 0
    resends: int = 0  # answers that were not an acknowledgement (5xx, connection lost): sent again
    orders_stored: int = 0
    duplicate_orders: int = 0
    published_unique: int = 0
    deliveries: int = 0
    acked_lost: int = 0  # acknowledged, but not stored or never published
    audit_ok: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.acked == self.sent
            and self.orders_stored == self.acked
            and self.duplicate_orders == 0
            and self.acked_lost == 0
            and self.audit_ok
        )

    def line(self) -> str:
        return (
            f"{self.scenario}: sent {self.sent}, acked {self.acked}, resends {self.resends}, "
            f"orders {self.orders_stored} (duplicates {self.duplicate_orders}), published "
            f"{self.published_unique} unique in {self.deliveries} deliveries, acked lost {self.acked_lost}, "
            f"audit {'ok' if self.audit_ok else 'BROKEN'}, {self.seconds:.1f} s"
            + (f" [{'; '.join(self.notes)}]" if self.notes else "")
        )


class Target:
    """Where the senders send: changes when a killed gateway is replaced by a new process."""

    def __init__(self, url: str) -> None:
        self.url = url


class Gateway:
    """`cgt-gateway serve` in a process of its own, on fixed ports so a successor takes its place."""

    def __init__(
        self,
        log_dir: Path,
        database_url: str,
        amqp_url: str,
        port: int,
        mllp_port: int,
        env: dict[str, str] | None = None,
    ) -> None:
        self.database_url, self.amqp_url = database_url, amqp_url
        self.env = env or {}
        self.port, self.mllp_port, self.log_dir = port, mllp_port, log_dir
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.checkpoints = log_dir / "audit-checkpoints.jsonl"

    def start(self, timeout: float = 60) -> None:
        self.starts += 1
        env = {
            **os.environ,
            "CGT_DATABASE_URL": self.database_url,
            "CGT_AMQP_URL": self.amqp_url,
            "CGT_HTTP_PORT": str(self.port),
            "CGT_MLLP_PORT": str(self.mllp_port),
            "CGT_OUTBOX_POLL_SECONDS": "0.1",
            # this database's checkpoints, beside its logs: never the checkout's var/ (another
            # test's database would disagree with them)
            "CGT_AUDIT_CHECKPOINTS_FILE": str(self.checkpoints),
            **self.env,
        }
        with open(self.log_dir / f"gateway-{self.port}-{self.starts}.log", "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.entrypoints.cli", "serve"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the gateway on {self.port} did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def load(
    target: Target, report: Report, *, senders: int, per_sender: int, prefix: str
) -> dict[str, str]:
    """Each sender places its orders one at a time and sends each again until it is acknowledged,
    as an interface engine does. The acknowledged message ids, with the event id each answer named."""
    acked: dict[str, str] = {}

    async def sender(s: int) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            for i in range(per_sender):
                n = s * per_sender + i + 1
                message_id = f"{prefix}-{n}"
                body = envelope_json(message_id, place(n))
                report.sent += 1
                while True:
                    try:
                        response = await http.post(
                            f"{target.url}/api/messages", content=body, headers=HOSPITAL
                        )
                    except httpx.HTTPError:
                        response = None
                    if response is not None and response.status_code in (200, 201):
                        acked[message_id] = response.json()["event_ids"][0]
                        report.acked = len(acked)
                        break
                    report.resends += 1
                    await asyncio.sleep(0.2)

    await asyncio.gather(*(sender(s) for s in range(senders)))
    return acked


async def once_acked(report: Report, count: int, timeout: float = 120) -> None:
    """Wait until `count` messages have been acknowledged: the fault lands in the middle of the load."""
    deadline = time.monotonic() + timeout
    while report.acked < count and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def settle(url: str, timeout: float = 60) -> None:
    """Until the outbox is empty: everything stored has been published."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{url}/health")).json()["outbox"]["backlog"] == 0:
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the outbox did not drain")


async def count_orders(database_url: str) -> tuple[int, int]:
    """Orders stored, and how many placer numbers name more than one order."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            stored = (await conn.execute(select(func.count()).select_from(t.orders))).scalar_one()
            per_placer = (
                select(func.count().label("n"))
                .select_from(t.crosswalk)
                .where(t.crosswalk.c.namespace == "site:demo-hospital:placer-order")
                .group_by(t.crosswalk.c.value)
                .subquery()
            )
            twice = (await conn.execute(select(func.count()).where(per_placer.c.n > 1))).scalar_one()
    finally:
        await dispose(engine)
    return int(stored), int(twice)


def audit_verifies(database_url: str, checkpoints: Path | None = None) -> bool:
    env = {**os.environ, "CGT_DATABASE_URL": database_url}
    if checkpoints is not None:
        env["CGT_AUDIT_CHECKPOINTS_FILE"] = str(checkpoints)
    done = subprocess.run(
        [sys.executable, "-m", "gateway.entrypoints.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    return done.returncode == 0


async def run(
    scenario: str,
    *,
    database_url: str,
    amqp_url: str,
    consume_url: str | None,
    log_dir: Path,
    ports: tuple[int, int],
    fault: Callable[[Gateway, Target, Report], Awaitable[None]],
    senders: int,
    per_sender: int,
) -> Report:
    """Start a gateway, load it, inject `fault` while the load runs, then count."""
    report = Report(scenario)
    started = time.monotonic()
    queue_name = f"faults.{scenario}"
    # The queue is declared before the load and read after it, each on a connection of its own:
    # a broker stopped in between (one of the faults) keeps a durable queue's messages.
    async with consumer(consume_url or amqp_url, queue_name) as queue:
        await queue.purge()
    gateway = Gateway(log_dir, database_url, amqp_url, *ports)
    gateway.start()
    target = Target(gateway.url)
    try:
        loading = asyncio.create_task(
            load(target, report, senders=senders, per_sender=per_sender, prefix=scenario)
        )
        await fault(gateway, target, report)
        acked = await asyncio.wait_for(loading, timeout=240)
        await settle(gateway.url)
        async with consumer(consume_url or amqp_url, queue_name) as queue:
            published = await tally(queue)
            await queue.delete(if_unused=False, if_empty=False)
        report.published_unique, report.deliveries = len(published), sum(published.values())
        report.orders_stored, report.duplicate_orders = await count_orders(database_url)
        report.acked_lost = sum(1 for event_id in acked.values() if event_id not in published)
        report.acked_lost += max(0, report.acked - report.orders_stored)
    finally:
        gateway.stop()
    report.audit_ok = audit_verifies(database_url, gateway.checkpoints)
    report.seconds = time.monotonic() - started
    return report


@asynccontextmanager
async def consumer(url: str, name: str) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    connection = await aio_pika.connect(url)
    try:
        yield await declare_consumer_queue(
            await connection.channel(), name, ["order.placed"], delivery_limit=5
        )
    finally:
        await connection.close()


async def tally(queue: aio_pika.abc.AbstractQueue, quiet_for: float = 1.5) -> dict[str, int]:
    """Deliveries per message id, until the queue has been quiet for `quiet_for` seconds."""
    published: dict[str, int] = {}
    quiet = time.monotonic()
    while time.monotonic() - quiet < quiet_for:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        published[message.message_id or ""] = published.get(message.message_id or "", 0) + 1
        quiet = time.monotonic()
    return published


# -- the faults -------------------------------------------------------------------------------


def kill_gateway(after: int) -> Callable[[Gateway, Target, Report], Awaitable[None]]:
    """SIGKILL the gateway once `after` messages are acknowledged; a successor takes its ports."""

    async def fault(gateway: Gateway, target: Target, report: Report) -> None:
        await once_acked(report, after)
        await asyncio.to_thread(gateway.kill)
        report.notes.append(f"killed after {report.acked} acknowledgements")
        await asyncio.to_thread(gateway.start)

    return fault


def stop_broker(
    broker: object, after: int, down_for: float
) -> Callable[[Gateway, Target, Report], Awaitable[None]]:
    """Stop a private RabbitMQ node once `after` messages are acknowledged, for `down_for` seconds."""

    async def fault(gateway: Gateway, target: Target, report: Report) -> None:
        await once_acked(report, after)
        await asyncio.to_thread(broker.stop)  # type: ignore[attr-defined]
        report.notes.append(f"broker down after {report.acked} acknowledgements, for {down_for:.0f} s")
        await asyncio.sleep(down_for)
        report.notes.append(f"{report.acked} acknowledged when it came back")
        await asyncio.to_thread(broker.start)  # type: ignore[attr-defined]

    return fault


def lock_sqlite(
    path: Path, after: float, held_for: float
) -> Callable[[Gateway, Target, Report], Awaitable[None]]:
    """Another process's exclusive lock on the SQLite file, `after` seconds in, for `held_for`."""

    def hold() -> None:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            time.sleep(held_for)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    async def fault(gateway: Gateway, target: Target, report: Report) -> None:
        await once_acked(report, after)
        report.notes.append(f"database locked after {report.acked} acknowledgements, for {held_for:.0f} s")
        await asyncio.to_thread(hold)
        report.notes.append(f"{report.acked} acknowledged when the lock was released")

    return fault
