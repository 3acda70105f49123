"""The simulator at scale: N journeys (default 1,000 / 3,000 / 10,000) through one gateway
process on SQLite or PostgreSQL, and optionally three replicas with one killed mid-run.

    .venv/bin/python bench/simulate.py --journeys 1000,3000 --database sqlite
    .venv/bin/python bench/simulate.py --journeys 3000 --database postgresql --replicas 3 --kill

For each run: wall time, messages/s, p50/p99 per boundary, the mix-up audit, the gateway's CPU
seconds and peak memory (from /proc), the simulator's own CPU, and the cost per journey; the
ratio of the largest run's cost per journey to the smallest's shows whether it stays flat.
Appends a Markdown section to bench/results/simulate.md."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import timeit
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg

from gateway.simulate.config import cast, write
from gateway.simulate.session import Options, simulate
from tests.support.faults import Gateway, settle
from tests.support.private_broker import free_port
from tests.support.replicas import replica_run

RESULTS = ROOT / "bench" / "results" / "simulate.md"


def _baseline_us() -> float:
    """The machine's speed, as FACTS.md scales figures: the best of 5 timings of sum(range(1000))."""
    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6


def _proc(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak resident KiB) of a live process."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM")
    )
    return cpu, peak


async def _database(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{folder}/gateway.db"
    name = f"cgt_bench_{uuid.uuid4().hex[:10]}"

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def one(
    journeys: int, database: str, amqp_url: str, run: int, rate: float, parties: tuple[int, int, int]
) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="cgt-sim-"))
    env = write(folder / "partners", *parties) if parties != (1, 1, 1) else None
    gateway = Gateway(folder, await _database(database, folder), amqp_url, free_port(), free_port(), env=env)
    gateway.start(timeout=120)
    assert gateway.process is not None
    own = resource.getrusage(resource.RUSAGE_SELF)
    try:
        options = Options(
            journeys=journeys,
            base_urls=(gateway.url,),
            mllp=(("127.0.0.1", gateway.mllp_port),),
            run=run,
            seed=run,
            fault_rate=0.1,
            rate=rate,
            speed=0.0,
            progress=True,
            settle_seconds=0,
            amqp=amqp_url,
        )
        began = time.monotonic()
        report = await simulate(options, cast(*parties))
        await settle(gateway.url, timeout=600)
        wall = time.monotonic() - began
        cpu, peak = _proc(gateway.process.pid)
    finally:
        gateway.stop()
    mine = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "journeys": journeys,
        "database": database,
        "report": report,
        "wall": wall,
        "gateway_cpu": cpu,
        "gateway_peak_mib": peak / 1024,
        "simulator_cpu": (mine.ru_utime + mine.ru_stime) - (own.ru_utime + own.ru_stime),
        "simulator_peak_mib": mine.ru_maxrss / 1024,  # this process's peak so far (runs go up in N)
    }


def _table(rows: list[dict[str, object]]) -> list[str]:
    out = [
        "| journeys | db | wall s | msgs | msgs/s | completed | swaps inj/quar/applied | false q. | acked lost "
        "| gateway CPU s | CPU ms/journey | gateway peak MiB | simulator CPU s | simulator peak MiB "
        "| p50/p99 ms by boundary |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        r = row["report"]
        bounds = "; ".join(f"{k} {v.p50_ms:.0f}/{v.p99_ms:.0f}" for k, v in r.boundaries.items())  # type: ignore[attr-defined]
        out.append(
            f"| {row['journeys']:,} | {row['database']} | {row['wall']:.0f} | {r.messages:,} | {r.messages / row['wall']:,.0f} "  # type: ignore[attr-defined,operator]
            f"| {r.journeys_completed:,} | {r.swaps_injected}/{r.swaps_quarantined}/{r.swaps_applied} "  # type: ignore[attr-defined]
            f"| {r.false_quarantines} | {r.acked_lost} | {row['gateway_cpu']:.0f} "  # type: ignore[attr-defined]
            f"| {1000 * row['gateway_cpu'] / row['journeys']:.0f} | {row['gateway_peak_mib']:.0f} "  # type: ignore[operator]
            f"| {row['simulator_cpu']:.0f} | {row.get('simulator_peak_mib', 0):.0f} | {bounds} |"
        )
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--journeys", default="1000,3000,10000")
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s cap (0: as fast as answered)")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument(
        "--parties", default="1,1,1", help="sites,couriers,manufacturers (see simulate config)"
    )
    parser.add_argument("--kill", action="store_true", help="kill one replica mid-run (with --replicas > 1)")
    args = parser.parse_args()
    counts = [int(n) for n in args.journeys.split(",")]
    sites, couriers, manufacturers = (int(n) for n in args.parties.split(","))
    parties = (sites, couriers, manufacturers)
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {args.database}, "
        f"{args.replicas} replica(s){', one killed mid-run' if args.kill else ''}\n",
        f"`sum(range(1000))`: {_baseline_us():.1f} µs (this machine's speed that day); command: "
        f"`bench/simulate.py --journeys {args.journeys} --database {args.database} --replicas {args.replicas}"
        f"{' --kill' if args.kill else ''}{f' --parties {args.parties}' if parties != (1, 1, 1) else ''}`\n",
    ]
    if args.replicas > 1:
        for i, n in enumerate(counts):
            folder = Path(tempfile.mkdtemp(prefix="cgt-replicas-"))
            result = await replica_run(
                database_url=await _database(args.database, folder),
                amqp_url=args.amqp,
                log_dir=folder,
                cast=cast(1, 1, 1),
                journeys=n,
                replicas=args.replicas,
                kill_at=0.4 if args.kill else None,
                run=60 + i,
                fault_rate=0.1,
            )
            lines += [f"- {line}" for line in result.lines() + result.report.examples]
            print("\n".join(result.lines() + result.report.examples))
    else:
        rows = []
        for i, n in enumerate(counts):
            row = await one(n, args.database, args.amqp, 40 + i, args.rate, parties)
            print("\n" + "\n".join(row["report"].lines() + row["report"].examples))  # type: ignore[attr-defined]
            rows.append(row)
        lines += _table(rows)
        if len(rows) > 1:
            per = [float(r["gateway_cpu"]) / int(r["journeys"]) for r in rows]  # type: ignore[arg-type]
            walls = [float(r["wall"]) / int(r["journeys"]) for r in rows]  # type: ignore[arg-type]
            lines.append(
                f"\nCost per journey, largest run / smallest: gateway CPU {per[-1] / per[0]:.2f}x, "
                f"wall time {walls[-1] / walls[0]:.2f}x (1.00 = flat)."
            )
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
