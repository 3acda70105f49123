"""End to end, every hop real: an EHR's ORM^O01 over MLLP -> `order.placed` on RabbitMQ -> a
status event over the canonical JSON HTTP API -> ORU^R01 back to the EHR's MLLP endpoint,
carrying the COI the gateway assigned (ORC-3) and the site's placer order number (ORC-2)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import httpx
import orjson
import pytest
import yaml

from adapters.hl7v2.adapter import Hl7v2
from adapters.hl7v2.serve import Hl7v2Service
from gateway.bus.topology import declare_topology
from gateway.canonical.envelope import CloudEvent
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.entrypoints.http import create_app
from gateway.settings import Settings
from tests.fixtures.hl7v2.peers import Ehr, Engine, field_of
from tests.support.hl7 import SHIPPED

ORM = (
    b"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|E2E-ORM-1|P|2.5.1\r"
    b"PID|1||MRN0777777^^^DEMOHOSP^MR||Journey^Juliet^^^^^L||19800202|F\r"
    b"PV1|1|O\r"
    b"ORC|NW|PO-777777^DEMO_EHR|||||||20261102091000|||1234567^Doctor^Demo\r"
    b"OBR|1|PO-777777^DEMO_EHR||S1234^Demo autologous CAR-T^ISBT128\r"
)


@pytest.fixture
async def gateway(tmp_path: Path, amqp_url: str, ehr: Ehr) -> AsyncIterator[Gateway]:
    profile = yaml.safe_load((SHIPPED / "demo-hospital.yaml").read_text(encoding="utf-8"))
    profile["outbound"] = {
        "host": "127.0.0.1",
        "port": ehr.port,
        "receiving_application": "DEMO_EHR",
        "receiving_facility": "DEMO_HOSPITAL",
        "events": ["collection.completed"],
        "statuses": {"collection.completed": {"code": "COLLECTED", "text": "Cells collected"}},
    }
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "demo-hospital.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    gw = bootstrap(
        Settings(
            env="test",
            database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
            amqp_url=amqp_url,
            mllp_port=0,
            adapters="canonical-json,hl7v2",
            profile_dirs={"hl7v2": tmp_path / "profiles"},
        )
    )
    gw.adapters["hl7v2"] = Hl7v2(queue_prefix=f"hl7v2-{tmp_path.name}")
    await gw.start()
    yield gw
    await gw.stop()


async def test_an_ehr_order_becomes_an_event_and_its_status_comes_back_to_the_ehr(
    gateway: Gateway, ehr: Ehr, amqp_url: str
) -> None:
    service = next(s for s in gateway.transports if isinstance(s, Hl7v2Service))
    await asyncio.wait_for(service.outbound[0].consuming.wait(), 20)
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    exchange = await declare_topology(channel)
    queue = await channel.declare_queue(f"test.e2e.{uuid.uuid4().hex[:8]}", exclusive=True)
    await queue.bind(exchange, routing_key="order.placed")

    # 1. the EHR places the order over MLLP and gets AA only after the commit
    engine = await Engine.connect(service.port)
    ack = await engine.send(ORM)
    await engine.close()
    assert field_of(ack, "MSA", 1) == "AA" and field_of(ack, "MSA", 2) == "E2E-ORM-1"

    # 2. order.placed is on RabbitMQ, with a COI the gateway assigned (the ORM carried none)
    message = None
    for _ in range(400):  # basic.get does not wait: poll for up to 20 s
        message = await queue.get(fail=False)
        if message is not None:
            break
        await asyncio.sleep(0.05)
    assert message is not None, "order.placed never reached RabbitMQ"
    await message.ack()
    placed = CloudEvent.from_json(message.body)
    await connection.close()
    assert placed.type == "org.cgt.order.placed" and placed.source == "/partners/demo-hospital/hl7v2"
    assert placed.data["order"]["product"]["code"] == "S1234" and placed.subject
    coi = placed.subject

    # 3. a status event arrives over the canonical JSON HTTP API
    body = {
        "message_id": "e2e-collected-1",
        "commands": [
            {
                "event": "collection.completed",
                "refs": [{"namespace": "coi", "value": coi}],
                "payload": {"collected_at": "2026-11-10T13:00:00+00:00", "din": "A999914123458"},
            }
        ],
    }
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.post(
            "/api/messages", content=orjson.dumps(body), headers={"X-API-Key": "demo-hospital-key"}
        )
    assert response.status_code == 201, response.text

    # 4. the EHR receives ORU^R01 naming its placer order number and the gateway's COI
    oru = await asyncio.wait_for(ehr.arrived.get(), 20)
    assert field_of(oru, "MSH", 9) == "ORU^R01^ORU_R01"
    assert field_of(oru, "PID", 3) == "MRN0777777^^^^MR"  # any authority: none named
    assert field_of(oru, "ORC", 2) == "PO-777777" and field_of(oru, "ORC", 3) == f"{coi}^CGT"
    assert field_of(oru, "OBX", 5) == "COLLECTED^Cells collected^L"
    assert field_of(oru, "PID", 5) == "Journey^Juliet"  # PID-5 is required: the site's own record
