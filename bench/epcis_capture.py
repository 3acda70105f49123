"""Benchmark of EPCIS capture end to end on SQLite: documents of 100 sensor readings each, POSTed
to /couriers/{courier}/epcis/capture through the ASGI app in process (no sockets): read the body,
verify the Standard Webhooks signature, refuse a replay, parse and check the document, map,
reconcile (the shipment's SSCC and logger), apply (`shipment.readings_reported`: store the readings
and evaluate excursions, when the core's handler does), commit, answer 202 + Location. The relay
publishes to a private RabbitMQ vhost behind the intake, as in production.

In the same run, interleaved:
- **canonical**: the same readings as the canonical-json `shipment.readings_reported` commands
  the adapter makes, on `/api/messages` (X-CGT HMAC, no replay memory): the core path alone;
- **ceiling**: JSON parse of the same documents + a SQLite batch insert of the same readings (one
  executemany a document, in one transaction, WAL, synchronous=FULL, the readings table's index);
  **ceiling_8_a_commit**: the same, eight documents a transaction, the peer of 8 senders;
- **decode**: the adapter's decode alone (parse, check, map), for the split.

    .venv/bin/python bench/epcis_capture.py --rounds 5      # 200 documents a round
    .venv/bin/python bench/epcis_capture.py --n 50 --rounds 1 --json
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loops
from epcis_traffic import COURIER, READINGS, book, canonical, document, hmac_signed, partners_file, signed
from scratch import private_vhost
from sqlalchemy import func, select

from adapters.couriers.epcis.adapter import adapter
from adapters.couriers.epcis.capture import CaptureRequest
from gateway.canonical.envelope import utcnow
from gateway.entrypoints.bootstrap import bootstrap
from gateway.entrypoints.http import create_app
from gateway.partners import Partner
from gateway.registry import InboundContext
from gateway.settings import Settings
from gateway.store import tables as t


async def capture_rate(
    amqp_url: str, bodies: list[bytes], clients: int, *, core_only: bool = False
) -> dict[str, float]:
    """Documents/s through the app on a fresh SQLite database; each request in its own task.
    `core_only`: the bodies are canonical-json envelopes, POSTed to /api/messages."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            env="test",
            database_url=f"sqlite+aiosqlite:///{tmp}/gw.db",
            amqp_url=amqp_url,
            adapters="canonical-json,epcis",
            partners_file=partners_file(Path(tmp)),
        )
        gateway = bootstrap(settings)
        await gateway.start()
        latencies: list[float] = []
        try:
            transport = httpx.ASGITransport(app=create_app(gateway))
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
                await book(http)
                url = f"/couriers/{COURIER}/epcis/capture"
                warm = document(10_000_000)
                first = await http.post(url, content=warm, headers=signed(warm, 10_000_000))
                assert first.status_code == 202 and "applied" not in first.text, first.text
                if core_only:
                    url, expected = "/api/messages", 201
                    requests = [(body, hmac_signed(body)) for body in bodies]
                else:
                    expected = 202
                    requests = [
                        (body, signed(body, i)) for i, body in enumerate(bodies)
                    ]  # signed before timing
                statuses: list[int] = []

                async def client() -> None:
                    while requests:
                        body, headers = requests.pop(0)
                        started = time.perf_counter()
                        response = await asyncio.create_task(http.post(url, content=body, headers=headers))
                        latencies.append(time.perf_counter() - started)
                        statuses.append(response.status_code)
                        assert response.status_code == expected, response.text

                started = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(clients)))
                elapsed = time.perf_counter() - started
            async with gateway.engine.connect() as conn:
                stored = (
                    await conn.execute(select(func.count()).select_from(t.shipment_readings))
                ).scalar_one()
                applied = (
                    await conn.execute(
                        select(func.count())
                        .select_from(t.inbound_messages)
                        .where(t.inbound_messages.c.outcome == "applied")
                    )
                ).scalar_one()
        finally:
            await gateway.stop()
    latencies.sort()
    return {
        "readings_per_s": len(bodies) * READINGS / elapsed,
        "documents_per_s": len(bodies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "readings_stored": float(stored),
        "documents_applied": float(applied),
    }


def ceiling_rate(bodies: list[bytes], per_commit: int = 1) -> dict[str, float]:
    """JSON parse + a SQLite batch insert of the same readings, a transaction `per_commit`
    documents (8: the fair peer of 8 senders, whose documents the intake commits together)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(f"{tmp}/ceiling.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE readings (id INTEGER PRIMARY KEY, shipment_id TEXT NOT NULL, device_id TEXT NOT NULL,"
            " probe TEXT NOT NULL DEFAULT '', at TEXT NOT NULL, temperature_c REAL)"
        )
        db.execute("CREATE UNIQUE INDEX ux ON readings (device_id, at, probe)")
        started = time.perf_counter()
        for n, body in enumerate(bodies):
            event = orjson.loads(body)["epcisBody"]["eventList"][0]
            rows = [
                (
                    event["epcList"][0],
                    e["sensorMetadata"]["deviceID"],
                    "",
                    e["sensorMetadata"]["time"],
                    r["value"],
                )
                for e in event["sensorElementList"]
                for r in e["sensorReport"]
            ]
            if n % per_commit == 0:
                db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR IGNORE INTO readings (shipment_id, device_id, probe, at, temperature_c) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            if n % per_commit == per_commit - 1 or n == len(bodies) - 1:
                db.execute("COMMIT")
        elapsed = time.perf_counter() - started
        db.close()
    return {"readings_per_s": len(bodies) * READINGS / elapsed, "documents_per_s": len(bodies) / elapsed}


def decode_ms(body: bytes, repeat: int = 50) -> float:
    ctx = InboundContext(
        Partner(id=COURIER, kind="courier", adapter="epcis"), "bench", utcnow(), CaptureRequest()
    )
    times = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            adapter.decode(body, ctx)
        times.append((time.perf_counter() - started) / repeat * 1e3)
    return statistics.median(times)


async def main() -> None:
    args = loops.rounds_arguments(200)
    sample = document(0)
    results: dict[str, Any] = {
        **loops.machine(args),
        "document_bytes": len(sample),
        "readings_per_document": READINGS,
        "decode_ms_per_document": round(decode_ms(sample), 3),
    }
    runs: dict[str, list[dict[str, float]]] = {}
    start = 0
    with private_vhost() as amqp_url:
        for _ in range(args.rounds):
            kinds = (
                "capture_clients1",
                "canonical_clients1",
                "capture_clients8",
                "ceiling",
                "ceiling_8_a_commit",
            )
            for kind in kinds:
                bodies = [document(start + i) for i in range(args.n)]
                start += args.n
                if kind.startswith("ceiling"):
                    rate = ceiling_rate(bodies, 8 if kind.endswith("commit") else 1)
                elif kind.startswith("canonical"):
                    rate = await capture_rate(amqp_url, canonical(bodies), 1, core_only=True)
                else:
                    rate = await capture_rate(amqp_url, bodies, 1 if kind.endswith("1") else 8)
                runs.setdefault(kind, []).append(rate)
    for name, rates in runs.items():
        results[name] = {key: round(statistics.median(r[key] for r in rates), 2) for key in rates[0]}
        results[name]["readings_per_s_all"] = [round(r["readings_per_s"], 1) for r in rates]
    ceiling = results["ceiling"]["readings_per_s"]
    peers = {"capture_clients1": ceiling, "canonical_clients1": ceiling}
    peers["capture_clients8"] = results["ceiling_8_a_commit"]["readings_per_s"]
    for kind, peer in peers.items():
        rate = results[kind]["readings_per_s"]
        results[kind]["us_per_reading"] = round(1e6 / rate, 1)
        results[kind]["ratio_to_its_ceiling"] = round(rate / peer, 3)
    results["capture_clients1"]["ratio_to_canonical"] = round(
        results["capture_clients1"]["readings_per_s"] / results["canonical_clients1"]["readings_per_s"], 3
    )
    for kind in ("ceiling", "ceiling_8_a_commit"):
        results[kind]["us_per_reading"] = round(1e6 / results[kind]["readings_per_s"], 1)
    print(json.dumps(results, indent=None if args.json else 2))


if __name__ == "__main__":
    loops.run(main())
