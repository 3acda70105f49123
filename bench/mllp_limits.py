"""Hostile-network scenarios against a real gateway on 127.0.0.1, with counts printed: idle
connections from one address and from many, senders trickling a frame a byte at a time, and an
unregistered sender's 1 MB frames. A registered sender's ACK latency is measured throughout.
Bounded in count and time: it stops by itself (in well under a minute with the defaults).

    .venv/bin/python bench/mllp_limits.py
    .venv/bin/python bench/mllp_limits.py --idle 1000 --sources 40 --trickle 100 --json

The gateway runs with the limits given here (short times, so the run is short; the caps are the
defaults of CGT_MLLP_MAX_CONNECTIONS and CGT_MLLP_MAX_CONNECTIONS_PER_SOURCE unless told).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loops
from scratch import private_vhost
from sqlalchemy import func, select

from adapters.hl7v2.serve import Hl7v2Service
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.settings import Settings
from gateway.store import tables as t

START, END = b"\x0b", b"\x1c\x0d"
HOST = "127.0.0.1"


def message(sender: str, control: str, padding: int = 0) -> bytes:
    note = f"NTE|1||{'x' * padding}\r" if padding else ""
    return (
        f"MSH|^~\\&|{sender}|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|{control}|P|2.5.1\r"
        f"PID|1||M{control}^^^DEMOHOSP^MR||Limits^Bench||19700101|F\r"
        f"ORC|NW|P{control}^DEMO_EHR\rOBR|1|P{control}^DEMO_EHR||S1234^Demo^ISBT128\r{note}"
    ).encode()


async def open_from(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        return await asyncio.open_connection(HOST, port, local_addr=(source, 0))
    except OSError:
        return None


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float | None:
    """How long until the gateway closed the connection (EOF or reset); None: not within `seconds`."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return None
    except (ConnectionError, OSError):
        pass
    return time.monotonic() - started


async def idle_flood(port: int, count: int, sources: int, idle: float, wait: float) -> dict[str, Any]:
    """`count` connections that send nothing, spread over `sources` addresses (127.0.0.10...)."""
    opened = [await open_from(port, f"127.0.0.{10 + i % sources}") for i in range(count)]
    live = [c for c in opened if c is not None]
    closed = await asyncio.gather(*(closed_within(r, wait) for r, _ in live))
    for _, writer in live:
        writer.close()
    return {
        "connections": count,
        "from_addresses": sources,
        "connect_failed": count - len(live),
        "refused_at_once": sum(1 for c in closed if c is not None and c < idle / 2),
        "closed_when_idle": sum(1 for c in closed if c is not None and c >= idle / 2),
        "closed_after_s_max": round(max((c for c in closed if c is not None), default=0), 2),
        "still_open": sum(1 for c in closed if c is None),
    }


async def trickle(port: int, count: int, deadline: float, wait: float) -> dict[str, Any]:
    """`count` senders starting a frame and sending one more byte every 0.2 s."""

    async def one(i: int) -> float | None:
        conn = await open_from(port, f"127.0.1.{1 + i % 200}")
        if conn is None:
            return None
        reader, writer = conn

        async def drip() -> None:
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(START)
                for byte in message("DEMO_EHR", f"T{i}"):
                    await asyncio.sleep(0.2)
                    writer.write(bytes([byte]))

        dripping = asyncio.create_task(drip())
        closed = await closed_within(reader, wait)
        dripping.cancel()
        writer.close()
        return closed

    dropped = [d for d in await asyncio.gather(*(one(i) for i in range(count))) if d is not None]
    at_deadline = [d for d in dropped if d >= deadline / 2]
    return {
        "connections": count,
        "refused_at_once": len(dropped) - len(at_deadline),
        "dropped_at_frame_deadline": len(at_deadline),
        "dropped_after_s_max": round(max(at_deadline), 2) if at_deadline else None,
        "not_dropped": count - len(dropped),
    }


async def unknown_frames(gateway: Gateway, port: int, frames: int, size: int) -> dict[str, Any]:
    """An unregistered sender's `frames` frames of `size` bytes, pipelined on one connection."""
    conn = await open_from(port, "127.0.0.3")
    assert conn is not None
    reader, writer = conn
    big = message("STRANGER_EHR", "U1", padding=size)
    started = time.monotonic()
    writer.write(b"".join(START + big + END for _ in range(frames)))
    await writer.drain()
    buffer = b""
    while buffer.count(END) < frames:
        chunk = await reader.read(65536)
        if not chunk:
            break
        buffer += chunk
    answers = buffer.count(END)
    refused = buffer.count(b"MSA|AR|")
    writer.close()
    async with gateway.engine.connect() as db:
        rows, stored = (
            await db.execute(
                select(func.count(), func.coalesce(func.sum(func.length(t.inbound_messages.c.raw)), 0)).where(
                    t.inbound_messages.c.partner == "unknown:mllp"
                )
            )
        ).one()
    return {
        "frames": frames,
        "frame_bytes": len(big),
        "answered": answers,
        "answered_ar": refused,
        "seconds": round(time.monotonic() - started, 2),
        "rows_stored": rows,
        "bytes_stored": stored,
    }


async def registered_sender(port: int, stop: asyncio.Event) -> dict[str, Any]:
    """A registered sender's ACK latency while the rest goes on."""
    conn = await open_from(port, HOST)
    assert conn is not None
    reader, writer = conn
    latencies: list[float] = []
    buffer, n = b"", 0
    while not stop.is_set():
        started = time.perf_counter()
        writer.write(START + message("DEMO_EHR", f"R{n}") + END)
        await writer.drain()
        while END not in buffer:
            buffer += await reader.read(65536)
        ack, _, buffer = buffer.partition(END)
        assert b"MSA|AA|" in ack, ack[:200]
        latencies.append(time.perf_counter() - started)
        n += 1
        await asyncio.sleep(0.02)  # the idle clock restarts with every answered frame
    writer.close()
    ordered = sorted(latencies)
    return {
        "acks": len(ordered),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def metrics() -> dict[str, float]:
    from prometheus_client import REGISTRY

    out = {}
    for family in REGISTRY.collect():
        if family.name.startswith(
            ("cgt_mllp_connections_refused", "cgt_mllp_connections_closed", "cgt_mllp_unknown")
        ):
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    label = ",".join(f"{v}" for v in sample.labels.values())
                    out[sample.name + (f"{{{label}}}" if label else "")] = sample.value
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle", type=int, default=600, help="idle connections")
    parser.add_argument("--sources", type=int, default=20, help="addresses the idle ones come from")
    parser.add_argument("--trickle", type=int, default=50, help="trickling senders")
    parser.add_argument("--frames", type=int, default=40, help="1 MB frames of an unknown sender")
    parser.add_argument("--idle-seconds", type=float, default=2.0)
    parser.add_argument("--frame-seconds", type=float, default=2.0)
    parser.add_argument("--max-connections", type=int, default=Settings().mllp_max_connections)
    parser.add_argument("--per-source", type=int, default=Settings().mllp_max_connections_per_source)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--loop", choices=loops.CHOICES, default="uvloop")
    args = parser.parse_args()
    with private_vhost() as amqp_url:
        tmp = Path(tempfile.mkdtemp(prefix="cgt-bench-limits-"))
        settings = Settings(
            env="test",
            database_url=f"sqlite+aiosqlite:///{tmp}/gw.db",
            amqp_url=amqp_url,
            mllp_port=0,
            adapters="canonical-json,hl7v2",
            mllp_idle_seconds=args.idle_seconds,
            mllp_frame_seconds=args.frame_seconds,
            mllp_max_connections=args.max_connections,
            mllp_max_connections_per_source=args.per_source,
        )
        gateway = bootstrap(settings)
        await gateway.start()
        try:
            port = next(s for s in gateway.transports if isinstance(s, Hl7v2Service)).port
            stop = asyncio.Event()
            steady = asyncio.create_task(registered_sender(port, stop))
            wait = 3 * max(args.idle_seconds, args.frame_seconds) + 2
            async with asyncio.timeout(60 + 4 * wait):
                results: dict[str, Any] = {
                    "settings": {
                        "idle_seconds": args.idle_seconds,
                        "frame_seconds": args.frame_seconds,
                        "max_connections": args.max_connections,
                        "per_source": args.per_source,
                    },
                    "idle_one_address": await idle_flood(port, args.idle, 1, args.idle_seconds, wait),
                    "idle_many_addresses": await idle_flood(
                        port, args.idle, args.sources, args.idle_seconds, wait
                    ),
                    "trickle": await trickle(port, args.trickle, args.frame_seconds, wait),
                    "unknown_sender": await unknown_frames(gateway, port, args.frames, 1_000_000),
                }
                stop.set()
                results["registered_sender"] = await steady
            results["metrics"] = metrics()
        finally:
            await gateway.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=None if args.json else 2))


if __name__ == "__main__":
    loops.run(main())
