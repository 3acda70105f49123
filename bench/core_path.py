"""Benchmark of the core path: one transaction per message (idempotency, reconcile, apply, audit,
outbox), then the relay's confirmed publishing; beside the bare ceilings measured in the same run.

    .venv/bin/python bench/core_path.py                 # SQLite and PostgreSQL, 2,000 messages
    .venv/bin/python bench/core_path.py --n 200 --json  # quick, machine-readable

Needs the local RabbitMQ (a private vhost is created and removed) and, for PostgreSQL, the local
server (a scratch database is created and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loops
from scratch import private_vhost

from gateway.bus.broker import Broker
from gateway.bus.relay import OutboxRelay
from gateway.canonical.command import Command
from gateway.service.intake import Intake
from gateway.store.db import create_engine, dispose, writer_for
from gateway.store.migrate import migrate
from gateway.store.prepared import Prepared
from gateway.store.repository import InboundRecord
from tests.support.drive import AUTHORITY

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SITE = "demo-hospital"  # a site of the test partner file: the intake authorises every sender


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def commands_for(n: int) -> list[Command]:
    """Half placements, half a follow-up event on an order placed earlier: the realistic mix."""
    out: list[Command] = []
    for i in range(n // 2):
        out.append(
            Command.model_validate(
                {
                    "event": "order.placed",
                    "refs": [
                        {"namespace": f"site:{SITE}:mrn", "value": f"M{i}"},
                        {"namespace": f"site:{SITE}:placer-order", "value": f"P{i}"},
                    ],
                    "patient": {"family_name": "Benchpatient", "birth_date": "1970-01-01"},
                    "payload": {"order": {"product": {"code": "S9999"}, "ordering_site": {"id": SITE}}},
                }
            )
        )
        out.append(
            Command.model_validate(
                {
                    "event": "collection.scheduled",
                    "refs": [{"namespace": f"site:{SITE}:placer-order", "value": f"P{i}"}],
                    "payload": {"scheduled_start": "2026-11-09T08:00:00Z"},
                }
            )
        )
    return out


def record(i: int) -> InboundRecord:
    return InboundRecord(SITE, "bench", "bench", f"m{i}", datetime.now(UTC), "application/json", b"{}" * 200)


async def timed(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> dict[str, float]:
    latencies: list[float] = []
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            start = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return {
        "msgs_per_s": round(n / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
    }


SCRATCH = Table(
    "bench_scratch", MetaData(), Column("id", Integer, primary_key=True), Column("v", String(100))
)


async def bare_insert(engine: AsyncEngine, n: int, concurrency: int) -> dict[str, float]:
    """The ceiling of the database as the intake meets it: one-row insert transactions on the same
    writer (synchronous driver, worker thread, same pragmas, same prepared-statement execution)."""
    writer = writer_for(engine)
    SCRATCH.create(writer.engine, checkfirst=True)
    statement = Prepared(insert(SCRATCH).values(v=bindparam("v")))

    def txn(i: int) -> None:
        with writer.engine.begin() as conn:
            statement.execute(conn, {"v": f"row-{i}"})

    return await timed(n, concurrency, lambda i: writer.run(lambda: txn(i)))


def raw_sqlite(path: Path, n: int) -> dict[str, float]:
    """The driver's own ceiling: sqlite3, WAL, synchronous=FULL, no SQLAlchemy, no threads."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    began = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (f"row-{i}",))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - began
    conn.close()
    return {"msgs_per_s": round(n / elapsed, 1)}


async def bare_publish(amqp_url: str, n: int, batch: int) -> dict[str, float]:
    """The ceiling of the broker: persistent confirmed publishing, `batch` in flight, like the relay."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.declare_exchange("bench.bare", aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue("bench.bare", durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(exchange, "#")
    body = b"x" * 900
    began = time.perf_counter()
    for start in range(0, n, batch):
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(body, message_id=str(i), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    "bench.x",
                )
                for i in range(start, min(n, start + batch))
            )
        )
    elapsed = time.perf_counter() - began
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
    return {"msgs_per_s": round(n / elapsed, 1)}


async def separate_relay(url: str, amqp_url: str, log: Path) -> asyncio.subprocess.Process:
    """`cgt-gateway relay` in a process of its own, as with CGT_RELAY=separate; returns once it runs."""
    env = {**os.environ, "CGT_DATABASE_URL": url, "CGT_AMQP_URL": amqp_url}
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "gateway.entrypoints.cli", "relay", "--poll-seconds", "0.02"),
            env=env,
            stderr=out,
        )
    deadline = time.monotonic() + 60
    while b"outbox relay started" not in log.read_bytes():
        if process.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the relay process did not start: {log.read_text()[-2000:]}")
        await asyncio.sleep(0.05)
    return process


async def core_path(
    engine: AsyncEngine, amqp_url: str, n: int, concurrency: int, relay: str
) -> dict[str, Any]:
    """Intake with the relay beside it (embedded, or a separate process), until the broker holds
    every event on a bound queue."""
    await migrate(engine)
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    embedded = OutboxRelay(engine, Broker(amqp_url), batch=500, poll_seconds=0.05)
    await embedded.broker.connect()  # declares the topology
    queue = await channel.declare_queue("bench.sink", durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind("cgt.events", "#")
    process = None
    if relay == "separate":
        await embedded.broker.close()
        log = Path("bench/out") / f"relay-{uuid.uuid4().hex[:6]}.log"
        process = await separate_relay(engine.url.render_as_string(hide_password=False), amqp_url, log)
        intake = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    else:
        intake = Intake(engine, coi_facility="A9999", authority=AUTHORITY, on_commit=embedded.wake)
    commands = commands_for(n)
    run_id = uuid.uuid4().hex[:6]

    async def one(i: int) -> None:
        rec = record(i)
        rec = InboundRecord(
            rec.partner,
            rec.transport,
            rec.adapter,
            f"{run_id}-{i}",
            rec.received_at,
            rec.content_type,
            rec.raw,
        )
        command = commands[i]
        outcome, _ = await intake.receive(rec, lambda: [command])
        assert outcome.status == "applied", outcome

    async def all_arrived() -> bool:
        if process is None:
            return embedded.published >= len(commands)
        declared = await channel.declare_queue("bench.sink", passive=True)
        return (declared.declaration_result.message_count or 0) >= len(commands)

    # Placements must precede their follow-ups: run the two halves in order, each concurrently.
    if process is None:
        embedded.start()
    began = time.perf_counter()
    placed = await timed(len(commands) // 2, concurrency, lambda i: one(2 * i))
    followed = await timed(len(commands) // 2, concurrency, lambda i: one(2 * i + 1))
    intake_elapsed = time.perf_counter() - began
    while not await all_arrived():
        await asyncio.sleep(0.01)
    total_elapsed = time.perf_counter() - began
    if process is None:
        await embedded.stop()
    else:
        process.terminate()
        await asyncio.wait_for(process.wait(), 20)
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
    return {
        "messages": len(commands),
        "intake_msgs_per_s": round(len(commands) / intake_elapsed, 1),
        "p50_ms": round(statistics.median([placed["p50_ms"], followed["p50_ms"]]), 3),
        "p99_ms": max(placed["p99_ms"], followed["p99_ms"]),
        "placement_p50_ms": placed["p50_ms"],
        "follow_up_p50_ms": followed["p50_ms"],
        "end_to_end_msgs_per_s": round(len(commands) / total_elapsed, 1),
    }


async def database(kind: str, tmp: Path) -> tuple[str, Callable[[], Awaitable[None]]]:
    if kind == "sqlite":
        path = tmp / f"bench-{uuid.uuid4().hex[:6]}.db"

        async def drop() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

        return f"sqlite+aiosqlite:///{path}", drop
    name = f"cgt_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop_pg() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", drop_pg


async def main(args: argparse.Namespace) -> None:
    with private_vhost() as amqp_url:
        results = await measure(args, amqp_url)
    print(json.dumps(results, indent=None if args.json else 2))


async def measure(args: argparse.Namespace, amqp_url: str) -> dict[str, Any]:
    tmp = Path("bench/out")
    tmp.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
        "n": args.n,
        "loop": args.loop,
        "bare_confirmed_publish": await bare_publish(amqp_url, args.n, batch=500),
        "raw_sqlite3_txn": raw_sqlite(tmp / f"raw-{uuid.uuid4().hex[:6]}.db", args.n),
    }
    for kind in args.databases.split(","):
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            url, drop = await database(kind, tmp)
            engine = create_engine(url)
            try:
                bare = await bare_insert(engine, args.n, concurrency)
            finally:
                await dispose(engine)
                await drop()
            ceiling = min(bare["msgs_per_s"], results["bare_confirmed_publish"]["msgs_per_s"])
            row: dict[str, Any] = {"bare_insert_txn": bare}
            for relay in args.relay.split(","):
                url, drop = await database(kind, tmp)
                engine = create_engine(url)
                try:
                    core = await core_path(engine, amqp_url, args.n, concurrency, relay)
                finally:
                    await dispose(engine)
                    await drop()
                core["end_to_end_vs_slower_ceiling"] = round(core["end_to_end_msgs_per_s"] / ceiling, 2)
                row[f"core_path/relay={relay}"] = core
            results[f"{kind}/senders={concurrency}"] = row
    return results


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="messages a run (even)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--concurrency", default="1,8", help="concurrent senders, comma-separated")
    parser.add_argument(
        "--relay", default="embedded,separate", help="embedded (in the intake's process), separate, or both"
    )
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop", help="serve runs on uvloop"
    )
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    loops.run(main(arguments()))
