"""Benchmark of a logger's readings through the core, on SQLite: documents of 100 readings each,
decoded by the canonical-json adapter and taken by the intake (idempotency, authorisation,
reconciliation, the batched insert that keeps each reading once, the shipment's excursion
evaluation, the raw message, the quiet event on the timeline, the audit record, commit). Beside
it, in the same run, the bare ceiling: JSON parse of the same documents and an SQLite
`executemany` of their readings into a table of the same shape and unique index, one transaction
per document, same pragmas (WAL, synchronous=FULL).

    .venv/bin/python bench/readings.py                  # 300 documents, 3 runs
    .venv/bin/python bench/readings.py --documents 100 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.canonical_json.adapter import adapter
from gateway.canonical.ids import ExternalRef
from gateway.service.inbound import accept
from gateway.service.intake import Intake
from gateway.store.db import create_engine, dispose
from gateway.store.migrate import migrate
from gateway.store.records import InboundRecord
from tests.support.builders import coi, envelope_json, event, place
from tests.support.drive import AUTHORITY, PARTNERS

PER_DOCUMENT = 100
T0 = datetime(2026, 11, 6, 0, 0, tzinfo=UTC)


def documents(count: int, logger: str) -> list[bytes]:
    """`count` canonical-json messages of 100 readings each, one a minute, in time order."""
    out = []
    for d in range(count):
        readings = [
            {
                "at": (T0 + timedelta(minutes=d * PER_DOCUMENT + i)).isoformat(),
                "temperature_c": 4.0 + (i % 7) * 0.3,
            }
            for i in range(PER_DOCUMENT)
        ]
        message = {
            "message_id": f"readings-{d}",
            "commands": [
                {
                    "event": "shipment.readings_reported",
                    "refs": [{"namespace": "courier:demo-courier:logger", "value": logger}],
                    "payload": {"shipment_id": logger, "device_id": logger, "readings": readings},
                }
            ],
        }
        out.append(orjson.dumps(message))
    return out


async def through_the_core(directory: Path, docs: list[bytes], senders: int) -> float:
    """Readings per second through the intake, `senders` documents in flight at once."""
    engine = create_engine(f"sqlite+aiosqlite:///{directory / f'core-{uuid.uuid4().hex}.db'}")
    await migrate(engine)
    intake = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    try:
        hospital, courier = PARTNERS.get("demo-hospital"), PARTNERS.get("demo-courier")
        placed, _ = await accept(intake, adapter, hospital, envelope_json("p-1", place(1)), transport="http")
        assert placed.coi is not None
        logger = ExternalRef(namespace="courier:demo-courier:logger", value="LOG-BENCH")
        booked = event(
            "shipment.booked",
            coi(placed.coi),
            logger,
            binds=(logger,),
            shipment={
                "shipment_id": "LOG-BENCH",
                "direction": "to_manufacturer",
                "courier": "demo-courier",
                "logger_id": "LOG-BENCH",
            },
        )
        # declared as POST /api/orders/{coi}/shipments declares it (the core vouches for the binds)
        record = InboundRecord("demo-hospital", "http", "shipments-api", "b-1", T0, None, b"{}")
        done, _ = await intake.receive(record, lambda: [booked])
        assert done.status == "applied", done
        queue = list(docs)
        started = time.perf_counter()

        async def sender() -> None:
            while queue:
                raw = queue.pop(0)
                outcome, _ = await accept(intake, adapter, courier, raw, transport="http")
                assert outcome.status == "applied", outcome

        await asyncio.gather(*(sender() for _ in range(senders)))
        return len(docs) * PER_DOCUMENT / (time.perf_counter() - started)
    finally:
        await dispose(engine)


def ceiling(directory: Path, docs: list[bytes], per_transaction: int = 1) -> float:
    """Readings per second: parse each document, insert its readings; `per_transaction`
    documents a transaction (the intake's group commit does the same with several senders)."""
    conn = sqlite3.connect(directory / f"bare-{uuid.uuid4().hex}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE readings (id INTEGER PRIMARY KEY, order_id TEXT, shipment_id TEXT, device_id TEXT,"
        " probe TEXT, at TEXT, until TEXT, temperature_c REAL, min_c REAL, max_c REAL, mean_c REAL,"
        " extra TEXT, inbound_id TEXT)"
    )
    conn.execute("CREATE UNIQUE INDEX ux ON readings (device_id, at, probe)")
    conn.execute("CREATE INDEX ix ON readings (order_id, shipment_id, at)")
    sql = (
        "INSERT INTO readings (order_id, shipment_id, device_id, probe, at, until, temperature_c, min_c,"
        " max_c, mean_c, extra, inbound_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (device_id, at, probe) DO NOTHING"
    )
    started = time.perf_counter()
    for first in range(0, len(docs), per_transaction):
        conn.execute("BEGIN")
        for raw in docs[first : first + per_transaction]:
            payload = orjson.loads(raw)["commands"][0]["payload"]
            device = payload["device_id"]
            rows = [
                (
                    "o-1",
                    "LOG-BENCH",
                    device,
                    "",
                    r["at"],
                    None,
                    r["temperature_c"],
                    None,
                    None,
                    None,
                    None,
                    "i",
                )
                for r in payload["readings"]
            ]
            conn.executemany(sql, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(docs) * PER_DOCUMENT / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    docs = documents(args.documents, "LOG-BENCH")
    results: dict[str, list[float]] = {
        "core, 1 sender": [],
        "core, 8 senders": [],
        "bare ceiling": [],
        "bare, 8 a commit": [],
    }
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        for _ in range(args.runs):
            results["bare ceiling"].append(ceiling(directory, docs))
            results["core, 1 sender"].append(await through_the_core(directory, docs, 1))
            results["bare, 8 a commit"].append(ceiling(directory, docs, 8))
            results["core, 8 senders"].append(await through_the_core(directory, docs, 8))
    bare = statistics.median(results["bare ceiling"])
    print(
        f"{args.documents} documents of {PER_DOCUMENT} readings, {args.runs} runs (medians; runs in brackets)"
    )
    for name, values in results.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(
            f"{name:16} {median:>9,.0f} readings/s  {1e6 / median:6.1f} µs/reading  "
            f"{median / bare:5.2f} of the ceiling  [{runs}]"
        )


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
