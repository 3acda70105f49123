"""Benchmark: HL7 v2 end to end over MLLP against a running gateway (SQLite file, RabbitMQ relay
running beside it): frame -> parse -> map -> reconcile -> commit -> ACK, as hospitals send: each
connection sends one message and waits for its ACK before the next. The senders run in a process
of their own (as a hospital's engine would), so they do not share the gateway's event loop.

    .venv/bin/python bench/hl7_mllp.py                      # 8 and 1 connections, 3 rounds each
    .venv/bin/python bench/hl7_mllp.py --n 4000 --rounds 5 --json

Each message is a new ORM^O01 order (a new patient, a new order: the heaviest write) unless
--kind adt: ADT^A08 of patients the gateway does not know (the filter's fast path, nothing stored).
--relay separate runs `cgt-gateway relay` beside the gateway (CGT_RELAY=separate) instead of the
relay embedded in the gateway's process.
A scratch RabbitMQ vhost and a scratch database are made for each round and removed after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loops
from core_path import separate_relay
from scratch import private_vhost

from adapters.hl7v2.adapter import adapter
from adapters.hl7v2.serve import Hl7v2Service
from gateway.entrypoints.bootstrap import bootstrap
from gateway.partners import load_partners
from gateway.service.inbound import accept
from gateway.service.intake import Intake
from gateway.settings import Settings
from gateway.store.db import create_engine, dispose
from gateway.store.migrate import migrate
from tests.support.drive import AUTHORITY

START, END = b"\x0b", b"\x1c\x0d"


def message(kind: str, run: str, i: int) -> bytes:
    msh = "MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||"
    if kind == "adt":
        return (
            f"{msh}ADT^A08^ADT_A01|{run}-{i}|P|2.5.1\rEVN|A08|20261102091500\r"
            f"PID|1||U{run}{i:07d}^^^DEMOHOSP^MR||Unknown^Patient{i}||19700101|F\rPV1|1|I|W^1^1\r"
        ).encode()
    return (
        f"{msh}ORM^O01^ORM_O01|{run}-{i}|P|2.5.1\r"
        f"PID|1||M{run}{i:07d}^^^DEMOHOSP^MR||Benchpatient^N{i}^A^^^^L||19700101|F|||1 Demo Street^^Springfield^IL^62701\r"
        "PV1|1|O|ONC^^^DEMO_HOSPITAL\r"
        f"ORC|NW|P{run}{i:07d}^DEMO_EHR|||SC||||20261102091000|||1234567^Doctor^Demo^^^^MD\r"
        f"OBR|1|P{run}{i:07d}^DEMO_EHR||S1234^Demo autologous CAR-T^ISBT128|||20261102091000\r"
        "NTE|1||Benchmark order\r"
    ).encode()


async def sender(port: int, messages: list[bytes], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    buffer = b""
    for raw in messages:
        started = time.perf_counter()
        writer.write(START + raw + END)
        await writer.drain()
        while END not in buffer:
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionError("the gateway closed the connection")
            buffer += chunk
        ack, _, buffer = buffer.partition(END)
        latencies.append(time.perf_counter() - started)
        if b"MSA|AA|" not in ack:
            raise AssertionError(f"not accepted: {ack[:300]!r}")
    writer.close()


async def senders(port: int, kind: str, run: str, n: int, connections: int) -> dict[str, Any]:
    """The client side (in its own process): throughput and ACK latency."""
    await sender(port, [message(kind, run + "W", i) for i in range(50)], [])  # warm-up
    per = n // connections
    batches = [[message(kind, run, c * per + i) for i in range(per)] for c in range(connections)]
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(sender(port, batch, latencies) for batch in batches))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "msgs_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


async def one_round(kind: str, n: int, connections: int, relay: str) -> dict[str, Any]:
    with private_vhost() as amqp_url:
        return await _round(kind, n, connections, relay, amqp_url)


async def _round(kind: str, n: int, connections: int, relay: str, amqp_url: str) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="cgt-bench-hl7-"))
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,hl7v2",
        relay=relay,  # type: ignore[arg-type]
    )
    gateway = bootstrap(settings)
    await gateway.start()
    publisher = None
    if relay == "separate":  # `cgt-gateway relay` beside the gateway, as with CGT_RELAY=separate
        publisher = await separate_relay(settings.database_url, amqp_url, tmp / "relay.log")
    try:
        port = next(t for t in gateway.transports if isinstance(t, Hl7v2Service)).port
        run = uuid.uuid4().hex[:4].upper()
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--client",
            f"{port},{kind},{run},{n},{connections}",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await client.communicate()
        if client.returncode != 0:
            raise RuntimeError("the sending process failed")
        result: dict[str, Any] = json.loads(out)
        return result
    finally:
        if publisher is not None:
            publisher.terminate()
            await publisher.wait()
        await gateway.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def accept_ceiling(kind: str, n: int, concurrency: int) -> dict[str, Any]:
    """The same messages through `accept()` directly (no MLLP, no relay): the core's ceiling."""
    tmp = Path(tempfile.mkdtemp(prefix="cgt-bench-hl7-"))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp}/gw.db")
    await migrate(engine)
    try:
        intake = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
        partners = load_partners(Settings().partners_file, env="test")
        adapter.configure(Settings(), partners)  # its site profiles, as at the gateway's start-up
        partner = partners.get("demo-hospital")
        run = uuid.uuid4().hex[:4].upper()
        queue = [message(kind, run, i) for i in range(n)]
        started = time.perf_counter()

        async def worker() -> None:
            while queue:
                outcome, _ = await accept(intake, adapter, partner, queue.pop(), transport="bench")
                assert outcome.status == "applied", outcome

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"msgs_per_s": round(n / (time.perf_counter() - started))}
    finally:
        await dispose(engine)
        shutil.rmtree(tmp, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="messages a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="8,1")
    parser.add_argument("--kind", choices=["orm", "adt"], default="orm")
    parser.add_argument("--relay", choices=["embedded", "separate"], default="embedded")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--loop", choices=loops.CHOICES, default="uvloop", help="the event loop (serve: uvloop)"
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)  # internal: run the senders
    args = parser.parse_args()
    if args.client:
        port, kind, run, n, connections = args.client.split(",")
        print(json.dumps(await senders(int(port), kind, run, int(n), int(connections))))
        return
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "loop": args.loop,
        "kind": args.kind,
        "n": args.n,
        "rounds": args.rounds,
        "relay": args.relay,
    }
    for connections in (int(c) for c in args.connections.split(",")):
        rounds = [await one_round(args.kind, args.n, connections, args.relay) for _ in range(args.rounds)]
        results[f"connections={connections}"] = {
            "median": {k: statistics.median(r[k] for r in rounds) for k in rounds[0]},
            "rounds": rounds,
        }
        if args.kind == "orm":
            ceilings = [await accept_ceiling(args.kind, args.n, connections) for _ in range(args.rounds)]
            results[f"accept_only/concurrency={connections}"] = {
                "median_msgs_per_s": statistics.median(c["msgs_per_s"] for c in ceilings),
                "rounds": ceilings,
            }
    print(json.dumps(results, indent=None if args.json else 2))


if __name__ == "__main__":
    loops.run(main())
