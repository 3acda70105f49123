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
- **decode**: the adapter's decode alone (parse, check, map), for the split.

    .venv/bin/python bench/epcis_capture.py                 # 200 documents a round, 3 rounds
    .venv/bin/python bench/epcis_capture.py --n 50 --rounds 1 --json
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import timeit
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loops
from scratch import private_vhost
from sqlalchemy import func, select

from adapters.couriers.epcis.adapter import adapter
from adapters.couriers.epcis.capture import CaptureRequest
from gateway.canonical.command import Command
from gateway.canonical.envelope import utcnow
from gateway.entrypoints.bootstrap import bootstrap
from gateway.entrypoints.http import create_app
from gateway.registry import InboundContext
from gateway.sdk import StandardWebhooks
from gateway.settings import Settings
from gateway.store import tables as t

COURIER = "bench-courier"
SECRET = "whsec_YmVuY2gtZXBjaXMtY291cmllci1zZWNyZXQ="  # noqa: S105 - the bench's own
HMAC_SECRET = "bench-courier-hmac"  # noqa: S105 - the bench's own
HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}
READINGS = 100
SHIPMENTS = 8
T0 = datetime(2026, 11, 9, 0, 0, tzinfo=UTC)
SW = StandardWebhooks()


def sscc(n: int) -> tuple[str, str]:
    """The EPC URN and the 18-digit SSCC of shipment n."""
    serial = f"3{n:09d}"
    body = serial[0] + "4012345" + serial[1:]
    check = (10 - sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body))) % 10) % 10
    return f"urn:epc:id:sscc:4012345.{serial}", body + str(check)


def document(doc: int, readings: int = READINGS) -> bytes:
    """A sensor_reporting event of shipment doc % SHIPMENTS with `readings` readings a minute apart."""
    urn, _ = sscc(doc % SHIPMENTS)
    start = T0 + timedelta(minutes=doc * readings)
    elements = [
        {
            "sensorMetadata": {
                "time": (start + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
                "deviceID": f"urn:epc:id:giai:4012345.LOGGER{doc % SHIPMENTS:04d}",
            },
            "sensorReport": [{"type": "Temperature", "value": 4.0 + (i % 7) * 0.25, "uom": "CEL"}],
        }
        for i in range(readings)
    ]
    event = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "sensor_reporting",
        "eventTime": (start + timedelta(minutes=readings)).isoformat().replace("+00:00", "Z"),
        "eventTimeZoneOffset": "+00:00",
        "epcList": [urn],
        "sensorElementList": elements,
    }
    return orjson.dumps(
        {
            "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2026-11-09T00:00:00Z",
            "epcisBody": {"eventList": [event]},
        }
    )


def partners_file(directory: Path) -> Path:
    document_ = yaml.safe_load(Settings().partners_file.read_text(encoding="utf-8"))
    document_["partners"].append(
        {
            "id": COURIER,
            "kind": "courier",
            "adapter": "canonical-json",
            "dialects": ["epcis"],
            "demo": True,
            "auth": {
                "standard_webhooks": {"secrets": [{"env": "CGT_BENCH_EPCIS", "demo_default": SECRET}]},
                "hmac_secret": {"env": "CGT_BENCH_HMAC", "demo_default": HMAC_SECRET},
            },
        }
    )
    path = directory / "partners.yaml"
    path.write_text(yaml.safe_dump(document_), encoding="utf-8")
    return path


def command(
    event: str, refs: list[dict[str, str]], binds: list[dict[str, str]] = (), **payload: Any
) -> dict[str, Any]:  # type: ignore[assignment]
    return Command.model_validate(
        {"event": event, "refs": refs, "binds": list(binds), "payload": payload}
    ).model_dump(mode="json")


async def book(http: httpx.AsyncClient) -> None:
    """SHIPMENTS orders, each collected, its shipment booked with the bench courier (SSCC bound)."""
    for n in range(SHIPMENTS):
        place = {
            "message_id": f"place-{n}",
            "commands": [
                {
                    "event": "order.placed",
                    "refs": [
                        {"namespace": "site:demo-hospital:mrn", "value": f"MRN-B{n:05d}"},
                        {"namespace": "site:demo-hospital:placer-order", "value": f"PO-B{n:05d}"},
                    ],
                    "patient": {
                        "family_name": "Benchpatient",
                        "given_name": "Alpha",
                        "birth_date": "1970-01-01",
                    },
                    "payload": {
                        "order": {
                            "product": {"code": "S9999", "name": "Demo CAR-T"},
                            "ordering_site": {"id": "demo-hospital"},
                        }
                    },
                }
            ],
        }
        placed = await http.post("/api/messages", content=orjson.dumps(place), headers=HOSPITAL)
        assert placed.status_code == 201, placed.text
        coi = {"namespace": "coi", "value": placed.json()["coi"]}
        _, digits = sscc(n)
        ref = {"namespace": "gs1:sscc", "value": digits}
        shipment = {
            "shipment_id": f"SH-{n}",
            "direction": "to_manufacturer",
            "courier": COURIER,
            "sscc": digits,
        }
        follow = {
            "message_id": f"book-{n}",
            "commands": [
                command("collection.completed", [coi], collected_at="2026-11-08T07:00:00Z"),
                command("shipment.booked", [coi, ref], [ref], shipment=shipment),
            ],
        }
        booked = await http.post("/api/messages", content=orjson.dumps(follow), headers=HOSPITAL)
        assert booked.status_code == 201, booked.text


def canonical(bodies: list[bytes]) -> list[bytes]:
    """The canonical-json envelopes of what the adapter makes of each document."""
    from gateway.partners import Partner

    ctx = InboundContext(
        Partner(id=COURIER, kind="courier", adapter="epcis"), "bench", utcnow(), CaptureRequest()
    )
    out = []
    for n, body in enumerate(bodies):
        decoded = adapter.decode(body, ctx)
        commands = [c.model_dump(mode="json") for c in decoded.commands]
        out.append(orjson.dumps({"message_id": f"canonical-{n}", "commands": commands}))
    return out


def hmac_signed(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(HMAC_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-CGT-Partner": COURIER,
        "X-CGT-Timestamp": stamp,
        "X-CGT-Signature": f"sha256={digest}",
        "Content-Type": "application/json",
    }


def signed(body: bytes, n: int) -> dict[str, str]:
    stamp = int(time.time())
    return {
        "webhook-id": f"msg_{n}",
        "webhook-timestamp": str(stamp),
        "webhook-signature": SW.sign(SECRET, f"msg_{n}", stamp, body),
        "Content-Type": "application/ld+json",
        "GS1-EPCIS-Version": "2.0.0",
    }


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


def ceiling_rate(bodies: list[bytes]) -> dict[str, float]:
    """JSON parse + a SQLite batch insert of the same readings, a transaction a document."""
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
        for body in bodies:
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
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR IGNORE INTO readings (shipment_id, device_id, probe, at, temperature_c) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("COMMIT")
        elapsed = time.perf_counter() - started
        db.close()
    return {"readings_per_s": len(bodies) * READINGS / elapsed, "documents_per_s": len(bodies) / elapsed}


def decode_ms(body: bytes, repeat: int = 50) -> float:
    from gateway.partners import Partner

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
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--loop", choices=loops.CHOICES, default="uvloop", help="the event loop (serve: uvloop)"
    )
    args = parser.parse_args()
    calibration = min(timeit.repeat("sum(range(1000))", number=10_000, repeat=5)) / 10_000 * 1e6
    sample = document(0)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "loop": args.loop,
        "calibration_sum_range_1000_us": round(calibration, 1),
        "document_bytes": len(sample),
        "readings_per_document": READINGS,
        "decode_ms_per_document": round(decode_ms(sample), 3),
    }
    runs: dict[str, list[dict[str, float]]] = {}
    start = 0
    with private_vhost() as amqp_url:
        for _ in range(args.rounds):
            for kind in ("capture_clients1", "canonical_clients1", "capture_clients4", "ceiling"):
                bodies = [document(start + i) for i in range(args.n)]
                start += args.n
                if kind == "ceiling":
                    rate = ceiling_rate(bodies)
                elif kind.startswith("canonical"):
                    rate = await capture_rate(amqp_url, canonical(bodies), 1, core_only=True)
                else:
                    rate = await capture_rate(amqp_url, bodies, 1 if kind.endswith("1") else 4)
                runs.setdefault(kind, []).append(rate)
    for name, rates in runs.items():
        results[name] = {key: round(statistics.median(r[key] for r in rates), 2) for key in rates[0]}
        results[name]["readings_per_s_all"] = [round(r["readings_per_s"], 1) for r in rates]
    ceiling = results["ceiling"]["readings_per_s"]
    for kind in ("capture_clients1", "canonical_clients1", "capture_clients4"):
        rate = results[kind]["readings_per_s"]
        results[kind]["us_per_reading"] = round(1e6 / rate, 1)
        results[kind]["ratio_to_ceiling"] = round(rate / ceiling, 3)
    results["ceiling"]["us_per_reading"] = round(1e6 / ceiling, 1)
    print(json.dumps(results, indent=None if args.json else 2))


if __name__ == "__main__":
    loops.run(main())
