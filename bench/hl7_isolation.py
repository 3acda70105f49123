"""Benchmark: does one sender's worst-case frame hold up the others? A real gateway (SQLite file,
RabbitMQ relay) and, in a process of its own, two MLLP connections: a peer sending ordinary new
orders one at a time (as hospitals send), and a heavy sender whose frames are 1 MiB worst cases.

    .venv/bin/python bench/hl7_isolation.py                 # thread, process, inline: 3 rounds each
    .venv/bin/python bench/hl7_isolation.py --rounds 1 --shape nte --json

Each round measures, in the same gateway: the peer's ACK latency alone for --seconds (normal
traffic), then the peer's ACK latency while the heavy sender's --frames frames are parsed (each
sent after the previous one's ACK). `thread` and `process` rounds run with the default
CGT_MLLP_OFFLOAD_BYTES and CGT_MLLP_OFFLOAD=thread / process (large frames parse on a worker
thread / process); `inline` rounds set the threshold above the frame size: all on the loop.

Shapes of the worst case (just under the 1 MiB frame limit): `pid3`, one PID-3 of ~45,000 MR
repetitions (the costliest shape known: it made identifier matching quadratic); `nte`, ~19,000
NTE segments (cheap to parse: the frame limit's size alone).
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
import timeit
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loops
from hl7_mllp import message
from scratch import private_vhost

from adapters.hl7v2.serve import Hl7v2Service
from gateway.entrypoints.bootstrap import bootstrap
from gateway.settings import Settings

START, END = b"\x0b", b"\x1c\x0d"
LIMIT = 1_048_576


def worst_case(shape: str, run: str, i: int) -> bytes:
    head = (
        f"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|{run}-H{i}|P|2.5.1\r"
    ).encode()
    tail = f"ORC|NW|H{run}{i:06d}^DEMO_EHR\rOBR|1|H{run}{i:06d}^DEMO_EHR||S1234^Demo^ISBT128\r".encode()
    room = LIMIT - len(head) - len(tail) - 200
    if shape == "pid3":
        reps = "~".join(f"H{run}{n:07d}^^^DEMOHOSP^MR" for n in range(room // 26))[:room]
        body = f"PID|1||{reps.rsplit('~', 1)[0]}||Heavy^Sender||19700101|F\r".encode()
        return head + body + tail
    pid = f"PID|1||H{run}{i:07d}^^^DEMOHOSP^MR||Heavy^Sender||19700101|F\r".encode()
    notes = b"".join(f"NTE|{n}||{'note text ' * 4}\r".encode() for n in range(room // 56))
    return head + pid + tail + notes[:room].rsplit(b"\r", 1)[0] + b"\r"


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.buffer = reader, writer, b""

    async def send(self, raw: bytes) -> bytes:
        self.writer.write(START + raw + END)
        await self.writer.drain()
        while END not in self.buffer:
            chunk = await self.reader.read(65536)
            if not chunk:
                raise ConnectionError("the gateway closed the connection")
            self.buffer += chunk
        ack, _, self.buffer = self.buffer.partition(END)
        return ack


def summary(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


async def clients(port: int, shape: str, run: str, seconds: float, frames: int) -> dict[str, Any]:
    """The client side (in its own process): the peer alone, then the peer beside the heavy sender."""
    peer = Connection(*await asyncio.open_connection("127.0.0.1", port))
    heavy = Connection(*await asyncio.open_connection("127.0.0.1", port))
    sent = 0

    async def ordinary(until: asyncio.Event, latencies: list[float]) -> None:
        nonlocal sent
        while not until.is_set():
            started = time.perf_counter()
            ack = await peer.send(message("orm", run, sent))
            latencies.append(time.perf_counter() - started)
            sent += 1
            if b"MSA|AA|" not in ack:
                raise AssertionError(f"not accepted: {ack[:200]!r}")

    for i in range(50):  # warm-up
        await peer.send(message("orm", run + "W", i))
    alone: list[float] = []
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    await ordinary(stop, alone)

    beside: list[float] = []
    stop = asyncio.Event()
    running = asyncio.create_task(ordinary(stop, beside))
    heavy_seconds, codes = [], []
    for i in range(frames):
        raw = worst_case(shape, run, i)
        started = time.perf_counter()
        ack = await heavy.send(raw)
        heavy_seconds.append(round(time.perf_counter() - started, 2))
        codes.append(ack.split(b"MSA|", 1)[1][:2].decode() if b"MSA|" in ack else "?")
    stop.set()
    await running
    return {
        "peer_alone": summary(alone),
        "peer_beside_heavy": summary(beside),
        "heavy_frame_bytes": len(worst_case(shape, run, 0)),
        "heavy_ack_seconds": heavy_seconds,
        "heavy_ack_codes": codes,
    }


async def one_round(shape: str, mode: str, seconds: float, frames: int) -> dict[str, Any]:
    with private_vhost() as amqp_url:
        tmp = Path(tempfile.mkdtemp(prefix="cgt-bench-iso-"))
        settings = Settings(
            env="test",
            database_url=f"sqlite+aiosqlite:///{tmp}/gw.db",
            amqp_url=amqp_url,
            mllp_port=0,
            adapters="canonical-json,hl7v2",
            mllp_offload_bytes=2 * LIMIT if mode == "inline" else Settings().mllp_offload_bytes,
            mllp_offload="process" if mode == "process" else "thread",
        )
        gateway = bootstrap(settings)
        await gateway.start()
        try:
            port = next(t for t in gateway.transports if isinstance(t, Hl7v2Service)).port
            run = uuid.uuid4().hex[:4].upper()
            client = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--client",
                f"{port},{shape},{run},{seconds},{frames}",
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await client.communicate()
            if client.returncode != 0:
                raise RuntimeError("the sending process failed")
            result: dict[str, Any] = json.loads(out)
            return result
        finally:
            await gateway.stop()
            shutil.rmtree(tmp, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="thread,process,inline")
    parser.add_argument("--shape", choices=["pid3", "nte"], default="pid3")
    parser.add_argument("--seconds", type=float, default=3.0, help="the peer alone, a round")
    parser.add_argument("--frames", type=int, default=2, help="worst-case frames a round")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval in the gateway")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--loop", choices=loops.CHOICES, default="uvloop")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # internal: run the two senders
    args = parser.parse_args()
    if args.client:
        port, shape, run, seconds, frames = args.client.split(",")
        print(json.dumps(await clients(int(port), shape, run, float(seconds), int(frames))))
        return
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    calibration = min(timeit.repeat("sum(range(1000))", number=10_000, repeat=5)) / 10_000 * 1e6
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "loop": args.loop,
        "shape": args.shape,
        "sum_range_1000_us": round(calibration, 1),
        "switch_interval_s": sys.getswitchinterval(),
    }
    for mode in args.modes.split(","):
        rounds = [await one_round(args.shape, mode, args.seconds, args.frames) for _ in range(args.rounds)]
        results[mode] = {
            "median_p99_ms": {
                "peer_alone": statistics.median(r["peer_alone"]["p99_ms"] for r in rounds),
                "peer_beside_heavy": statistics.median(r["peer_beside_heavy"]["p99_ms"] for r in rounds),
            },
            "rounds": rounds,
        }
    print(json.dumps(results, indent=None if args.json else 2))


if __name__ == "__main__":
    loops.run(main())
