"""Disclosure, end to end: a whole journey through the real gateway, and every outbound payload
scanned for what its destination's profile (mappings/disclosure/) forbids.

The site places the order over MLLP naming its patient (names, MRN, birth date) and sends an ADT
update; then collection, shipment to the manufacturer, manufacturing, release and delivery back
arrive over the canonical JSON API from the site, the courier and the manufacturer. Captured:
the HL7 the test EHR receives, the FHIR Tasks a test site server receives, every CloudEvent on a
`#`-bound queue, and what the outbound runner renders for a manufacturer and a courier
destination. None but the site's carries the patient's names or MRN (the manufacturer's has the
initials and birth date), none but those two the birth date; none carries another partner's own
identifiers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import pytest
import uvicorn
import yaml

from adapters.hl7v2.adapter import Hl7v2
from adapters.hl7v2.serve import Hl7v2Service
from gateway.bus.topology import declare_topology
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.ids import ExternalRef
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.entrypoints.http import create_app
from gateway.sdk import Destination, OrderView, OutboundRunner
from gateway.settings import Settings
from tests.fixtures.hl7v2.peers import Ehr, Engine, field_of
from tests.integration.test_fhir_notify import SiteFhirServer, free_port
from tests.support.builders import coi, envelope_json, event
from tests.support.hl7 import SHIPPED
from tests.support.manufacturing import TESTS

FAMILY, GIVEN, MRN, BIRTH = "Discloza", "Dorothea", "MRN0555123", "19790315"
PATIENT = (FAMILY, GIVEN, MRN, BIRTH, "1979-03-15")  # what only the site may receive (all of it)
NAMES = (FAMILY, GIVEN, MRN)  # what a manufacturer never receives (it has initials and birth date)
MES_ORDER = ExternalRef(namespace="mes:demo-manufacturer:order", value="MESORD-8812")
TRACKING = ExternalRef(namespace="courier:demo-courier:tracking", value="TRK-55-0917")
OWN = {"site": (MRN,), "manufacturer": (MES_ORDER.value,), "courier": (TRACKING.value,)}

ORM = (
    b"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|DJ-ORM-1|P|2.5.1\r"
    b"PID|1||MRN0555123^^^DEMOHOSP^MR||Discloza^Dorothea^^^^^L||19790315|F\r"
    b"PV1|1|O\r"
    b"ORC|NW|PO-555123^DEMO_EHR|||||||20261102091000|||1234567^Doctor^Demo\r"
    b"OBR|1|PO-555123^DEMO_EHR||S1234^Demo autologous CAR-T^ISBT128\r"
    b"NTE|1||Call Dorothea Discloza the day before collection\r"
)
ADT = (
    b"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102093000||ADT^A08^ADT_A01|DJ-ADT-1|P|2.5.1\r"
    b"EVN|A08|20261102093000\r"
    b"PID|1||MRN0555123^^^DEMOHOSP^MR||Discloza^Dorothea^M^^^^L||19790315|F\r"
)
HL7_STATUSES = {
    "collection.completed": {"code": "COLLECTED", "text": "Cells collected"},
    "manufacturing.released": {"code": "RELEASED", "text": "Product released"},
    "shipment.delivered": {"code": "DELIVERED", "text": "Shipment delivered"},
}


@dataclass
class Capture:
    """A destination's outbound side that renders the view it is given, and keeps what it sent."""

    sent: list[bytes] = field(default_factory=list)

    def render(self, event: CloudEvent, view: OrderView, profile: None) -> bytes:
        return orjson.dumps(
            {
                "event": event.type,
                "order": view.order.model_dump(mode="json"),
                "refs": [r.model_dump() for r in view.refs],
            }
        )

    async def deliver(self, request: bytes) -> None:
        self.sent.append(request)


@pytest.fixture
async def site_server() -> AsyncIterator[tuple[SiteFhirServer, str]]:
    app, port = SiteFhirServer(), free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield app, f"http://127.0.0.1:{port}/fhir"
    server.should_exit = True
    await task


@pytest.fixture
async def gateway(
    tmp_path: Path,
    amqp_url: str,
    ehr: Ehr,
    site_server: tuple[SiteFhirServer, str],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("CGT_FHIR_HOOK_URL_DEMO_HOSPITAL", site_server[1])
    profile = yaml.safe_load((SHIPPED / "demo-hospital.yaml").read_text(encoding="utf-8"))
    profile["outbound"] = {
        "host": "127.0.0.1",
        "port": ehr.port,
        "receiving_application": "DEMO_EHR",
        "receiving_facility": "DEMO_HOSPITAL",
        "events": list(HL7_STATUSES),
        "statuses": HL7_STATUSES,
    }
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "demo-hospital.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    gw = bootstrap(
        Settings(
            env="test",
            database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
            amqp_url=amqp_url,
            mllp_port=0,
            adapters="canonical-json,hl7v2,fhir-r4",
            profile_dirs={"hl7v2": tmp_path / "profiles"},
        )
    )
    gw.adapters["hl7v2"] = Hl7v2(queue_prefix=f"hl7v2-{tmp_path.name}")
    await gw.start()
    yield gw
    await gw.stop()


def signed(body: bytes) -> dict[str, str]:
    """The demo courier's X-CGT-* signature."""
    stamp = str(int(time.time()))
    digest = hmac.new(b"demo-courier-secret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-CGT-Partner": "demo-courier", "X-CGT-Timestamp": stamp, "X-CGT-Signature": f"sha256={digest}"}


def leaks(payload: bytes, forbidden: tuple[str, ...]) -> list[str]:
    text = payload.decode("utf-8", "replace").upper()
    return [word for word in forbidden if word.upper() in text]


async def until(condition: Any, what: str, timeout: float = 40.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_every_outbound_payload_of_a_journey_carries_only_what_its_destination_may_receive(
    gateway: Gateway, ehr: Ehr, site_server: tuple[SiteFhirServer, str], amqp_url: str
) -> None:
    fhir_site = site_server[0]
    suffix = uuid.uuid4().hex[:8]
    capture = {"manufacturer": Capture(), "courier": Capture()}
    runners = [
        OutboundRunner(
            gateway,
            Destination(
                f"disclosure-{kind}-{suffix}", gateway.partners.get(f"demo-{kind}"), "test", None, ["#"]
            ),
            capture[kind],
        )
        for kind in ("manufacturer", "courier")
    ]
    for runner in runners:
        await runner.open()
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(f"test.disclosure.{suffix}", exclusive=True)
    await queue.bind(await declare_topology(channel), routing_key="#")
    events: list[bytes] = []

    async def on_event(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        events.append(message.body)
        await message.ack()

    await queue.consume(on_event)

    # The site places the order over MLLP, naming its patient, then updates the patient by ADT.
    service = next(s for s in gateway.transports if isinstance(s, Hl7v2Service))
    await asyncio.wait_for(service.outbound[0].consuming.wait(), 20)
    mllp = await Engine.connect(service.port)
    assert field_of(await mllp.send(ORM), "MSA", 1) == "AA"
    assert field_of(await mllp.send(ADT), "MSA", 1) == "AA"
    await mllp.close()
    await until(lambda: len(events) >= 2, "order.placed and patient.updated")
    placed = next(CloudEvent.from_json(b) for b in events if b"org.cgt.order.placed" in b)
    the_coi = coi(placed.subject or "")

    hospital = {"X-API-Key": "demo-hospital-key"}
    maker = {"X-API-Key": "demo-manufacturer-key"}
    to_maker = {"shipment_id": "SH-IN", "direction": "to_manufacturer", "courier": "demo-courier",
                "temperature_class": "<=-150C"}  # fmt: skip
    to_site = {"shipment_id": "SH-OUT", "direction": "to_site", "courier": "demo-courier",
               "temperature_class": "<=-150C"}  # fmt: skip
    journey = [
        (maker, event("order.accepted", the_coi, MES_ORDER, binds=(MES_ORDER,))),
        (hospital, event("collection.completed", the_coi, collected_at="2026-11-10T13:00:00Z", din="A999914123458")),
        (hospital, event("shipment.booked", the_coi, shipment=to_maker)),
        (None, event("shipment.picked_up", the_coi, TRACKING, binds=(TRACKING,), shipment_id="SH-IN")),
        (None, event("shipment.delivered", the_coi, shipment_id="SH-IN")),
        (maker, event("manufacturing.material_received", the_coi, din="A999914123458J", scanned_coi=the_coi.value)),
        (maker, event("manufacturing.started", the_coi, batch_id="B-0917")),
        *((maker, event("manufacturing.qc_result", the_coi, batch_id="B-0917", test=test, result="pass"))
          for test in TESTS),
        (maker, event("manufacturing.released", the_coi, batch_id="B-0917")),
        (maker, event("shipment.booked", the_coi, shipment=to_site)),
        (None, event("shipment.picked_up", the_coi, shipment_id="SH-OUT")),
        (None, event("shipment.delivered", the_coi, shipment_id="SH-OUT")),
    ]  # fmt: skip
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(gateway)), base_url="http://gateway"
    ) as http:
        for n, (headers, command) in enumerate(journey):
            body = envelope_json(f"dj-{suffix}-{n}", command)
            answer = await http.post("/api/messages", content=body, headers=headers or signed(body))
            assert answer.status_code == 201, (command.event, answer.text)

    total = 2 + len(journey)
    await until(lambda: len(events) >= total, "every canonical event")
    await until(lambda: all(r.handled >= total for r in runners), "both runners")
    await until(lambda: len(ehr.received) >= 3, "the EHR's HL7 statuses")  # delivered: to the site only
    await until(lambda: len(fhir_site.received) >= len(journey), "the site's FHIR Tasks")
    for runner in runners:
        await runner.stop()
    await connection.close()

    others = OWN["manufacturer"] + OWN["courier"]
    site_payloads = [*ehr.received, *(body for _, _, body in fhir_site.received)]
    # The site receives its patient's demographics where it renders them, never others' identifiers.
    assert any(FAMILY.upper() in p.decode().upper() and MRN in p.decode() for p in ehr.received)
    assert [leaks(p, others) for p in site_payloads] == [[]] * len(site_payloads)
    # Every canonical event (manufacturers and couriers consume the exchange): no patient, no
    # partner's own identifier.
    assert [leaks(e, PATIENT + others) for e in events] == [[]] * len(events)
    updated = next(orjson.loads(e) for e in events if b"org.cgt.patient.updated" in e)
    assert updated["data"]["changed"] == ["birth_date", "family_name", "given_name", "sex"]
    # What the runner renders for a manufacturer and for a courier destination.
    sent = capture["manufacturer"].sent
    assert len(sent) == total - 1  # every order event (patient.updated names no order)
    assert [leaks(p, NAMES + OWN["courier"]) for p in sent] == [[]] * len(sent)
    assert b"1979-03-15" in sent[-1]  # the birth date is the manufacturer's; initials: views only
    assert b"A999914123458" in sent[-1] and MES_ORDER.value.encode() in sent[-1] and b"B-0917" in sent[-1]
    sent = capture["courier"].sent
    assert len(sent) >= 6  # a party from the booking of its first shipment on
    assert [leaks(p, PATIENT + OWN["manufacturer"] + ("B-0917",)) for p in sent] == [[]] * len(sent)
    assert TRACKING.value.encode() in sent[-1] and b"<=-150C" in sent[-1]
