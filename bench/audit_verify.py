"""How long `audit verify` takes on a long chain, and what checking it against signed checkpoints
adds. Peer in the same run: the walk as it was before rows were read column by column (SQLAlchemy
converts every row of a page; a bad value then stops the whole walk), same hashing.

    .venv/bin/python bench/audit_verify.py --records 50000 --every 5000 [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit import AuditEntry, append, verify
from gateway.audit.chain import GENESIS, record_hash
from gateway.audit.checkpoint import Checkpoint, Due, append_to_file, read_file, take
from gateway.audit.verify import stored_checkpoints
from gateway.canonical.envelope import utcnow
from gateway.store.db import create_engine, dispose, writer_for
from gateway.store.migrate import migrate
from gateway.store.tables import audit_records

KEY = b"bench-audit-key"


def build(engine: AsyncEngine, records: int, every: int, path: Path) -> None:
    """`records` records in transactions of 500, a checkpoint every `every` records."""
    writer = writer_for(engine)
    start = utcnow()
    for first in range(0, records, 500):
        at = start + timedelta(milliseconds=first)
        entries = [
            AuditEntry(
                "partner:bench-site",
                "order.placed",
                f"CHA9999{n:08d}",
                {
                    "inbound_id": f"{n:036d}",
                    "adapter": "canonical-json",
                    "transport": "http",
                    "status_to": "ordered",
                },
            )
            for n in range(first, min(first + 500, records))
        ]
        with writer.engine.begin() as conn:
            seq = append(conn, entries, at)
            if seq % every == 0:
                signed = take(conn, KEY, at, Due(records=every, seconds=1e9))
                assert signed is not None
                append_to_file(path, signed)


async def previous_walk(conn: AsyncConnection) -> int:
    last, expected, prev = 0, 1, GENESIS
    while True:
        rows = (
            await conn.execute(
                select(audit_records)
                .where(audit_records.c.seq > last)
                .order_by(audit_records.c.seq)
                .limit(5000)
            )
        ).all()
        if not rows:
            return expected - 1
        for row in rows:
            entry = AuditEntry(row.actor, row.action, row.subject, row.detail)
            assert row.seq == expected and row.prev_hash == prev
            assert record_hash(row.seq, row.at, entry, row.prev_hash) == row.hash
            prev, expected = row.hash, expected + 1
        last = rows[-1].seq


async def timed(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[object]]) -> float:
    async with engine.connect() as conn:
        started = time.perf_counter()
        await work(conn)
        return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--every", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite+aiosqlite:///{scratch}/bench.db"
        path = Path(scratch) / "audit-checkpoints.jsonl"
        engine = create_engine(url)
        await migrate(engine)
        await asyncio.get_running_loop().run_in_executor(None, build, engine, args.records, args.every, path)

        async def alone(conn: AsyncConnection) -> None:
            assert (await verify(conn)).ok

        async def with_checkpoints(conn: AsyncConnection) -> None:
            signed: list[Checkpoint | str] = [*read_file(path), *await stored_checkpoints(conn)]
            report = await verify(conn, signed, [KEY])
            assert report.ok and report.covered == args.records - args.records % args.every

        figures: dict[str, list[float]] = {"previous walk": [], "verify": [], "verify + checkpoints": []}
        for _ in range(args.runs):
            figures["previous walk"].append(await timed(engine, previous_walk))
            figures["verify"].append(await timed(engine, alone))
            figures["verify + checkpoints"].append(await timed(engine, with_checkpoints))
        print(f"{engine.dialect.name}, {args.records} records, a checkpoint every {args.every}")
        for name, runs in figures.items():
            median = statistics.median(runs)
            print(
                f"  {name:22} {median:6.2f} s  {args.records / median:8,.0f} records/s"
                f"  (runs: {', '.join(f'{r:.2f}' for r in runs)})"
            )
        await dispose(engine)


if __name__ == "__main__":
    asyncio.run(main())
