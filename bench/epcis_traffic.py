"""Traffic for bench/epcis_capture.py: the bench courier, its orders and shipments, EPCIS
documents of 100 logger readings each, and the same readings as canonical-json envelopes."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from adapters.couriers.epcis.adapter import adapter
from adapters.couriers.epcis.capture import CaptureRequest
from adapters.couriers.epcis.identify import check_digit
from gateway.canonical.command import Command
from gateway.canonical.envelope import utcnow
from gateway.partners import Partner
from gateway.registry import InboundContext
from gateway.sdk import StandardWebhooks
from gateway.settings import Settings

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
    return f"urn:epc:id:sscc:4012345.{serial}", body + check_digit(body)


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
