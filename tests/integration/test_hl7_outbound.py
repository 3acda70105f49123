"""Status back to the site's EHR over MLLP, against a real EHR endpoint and the real RabbitMQ:
ORU^R01 and ORR^O02 carry the placer number (ORC-2) and the COI (ORC-3); an ACK for another
message is never credited; failures end in the dead-letter queue with a `delivery.failed` alert."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from adapters.canonical_json.adapter import adapter as canonical_json
from adapters.hl7v2.adapter import Hl7v2
from adapters.hl7v2.serve import Hl7v2Service
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.service.inbound import accept
from gateway.settings import Settings
from gateway.store import tables as t
from tests.fixtures.hl7v2.peers import Ehr, Engine, field_of
from tests.support.builders import coi, envelope_json, event, place, placer
from tests.support.hl7 import SHIPPED
from tests.support.partners import OTHER_SITE, with_second_site

STATUSES = {
    "collection.completed": {"code": "COLLECTED", "text": "Cells collected", "order_status": "IP"},
    "manufacturing.started": {"code": "MFG-STARTED", "text": "Manufacturing started", "order_status": "IP"},
    "shipment.picked_up": {"code": "SHIPPED", "text": "Product shipped to site", "order_status": "IP"},
}


def site_profile(directory: Path, ehr_port: int, **outbound: Any) -> Path:
    document = yaml.safe_load((SHIPPED / "demo-hospital.yaml").read_text(encoding="utf-8"))
    document["outbound"] = {
        "host": "127.0.0.1",
        "port": ehr_port,
        "receiving_application": "DEMO_EHR",
        "receiving_facility": "DEMO_HOSPITAL",
        "events": ["order.accepted", *STATUSES],
        "statuses": STATUSES,
        "connect_timeout": 1.0,
        "ack_timeout": 0.3,
        "attempts": 2,
        "backoff": 0.05,
        "delivery_limit": 2,
        **outbound,
    }
    directory.mkdir(exist_ok=True)
    (directory / "demo-hospital.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return directory


@pytest.fixture
async def gateways(tmp_path: Path, amqp_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Starts the gateway (one a test) once the test knows where its EHR listens."""
    made: list[Gateway] = []

    async def make(ehr_port: int, **outbound: Any) -> Gateway:
        profiles = site_profile(tmp_path / "profiles", ehr_port, **outbound)
        settings = Settings(
            env="test",
            database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
            amqp_url=amqp_url,
            mllp_port=0,
            adapters="canonical-json,hl7v2",  # the dialects these tests speak
            partners_file=with_second_site(tmp_path),
            outbox_poll_seconds=0.05,
            profile_dirs={"hl7v2": profiles},
        )
        gw = bootstrap(settings)
        gw.adapters["hl7v2"] = Hl7v2(queue_prefix=f"hl7v2-{tmp_path.name}")
        await gw.start()
        made.append(gw)
        await asyncio.wait_for(outbound_of(gw).consuming.wait(), 20)  # its queue is bound from now on
        return gw

    yield make
    for gw in made:
        await gw.stop()


def outbound_of(gw: Gateway) -> Any:
    service = next(s for s in gw.transports if isinstance(s, Hl7v2Service))
    return service.outbound[0]


async def eventually(check: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time allowed")


async def place_over_mllp(gw: Gateway, n: int = 1) -> None:
    service = next(s for s in gw.transports if isinstance(s, Hl7v2Service))
    engine = await Engine.connect(service.port)
    ack = await engine.send(
        (
            f"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|ORM-{n}|P|2.5.1\r"
            f"PID|1||MRN{n:06d}^^^DEMOHOSP^MR~CHA999926ABC12{n}^^^COI^RI||Testpatient^Alpha||19700101|F\r"
            f"ORC|NW|PO-{n:06d}\rOBR|1|PO-{n:06d}||S1234^Demo autologous CAR-T^ISBT128\r"
        ).encode()
    )
    await engine.close()
    assert field_of(ack, "MSA", 1) == "AA", ack


async def send_canonical(gw: Gateway, partner: str, *commands: Any) -> None:
    raw = envelope_json(f"m-{time.monotonic_ns()}", *commands)
    outcome, _ = await accept(gw.intake, canonical_json, gw.partners.get(partner), raw, transport="http")
    assert outcome.status == "applied", outcome


def collected(n: int = 1) -> Any:
    return event(
        "collection.completed",
        placer(f"PO-{n:06d}"),
        collected_at=datetime(2026, 11, 10, 13, 0, tzinfo=UTC),
        din="A999914123458",
    )


async def alerts(gw: Gateway) -> list[dict[str, Any]]:
    async with gw.engine.connect() as conn:
        rows = await conn.execute(
            select(t.events.c.envelope).where(t.events.c.type == "org.cgt.delivery.failed")
        )
        return [dict(r.envelope) for r in rows]


async def test_a_milestone_goes_back_as_oru_r01_with_placer_number_and_coi(
    ehr: Ehr, gateways: Callable[..., Any]
) -> None:
    gw = await gateways(ehr.port)
    await place_over_mllp(gw)
    await send_canonical(gw, "demo-hospital", collected())
    message = await asyncio.wait_for(ehr.arrived.get(), 20)
    assert field_of(message, "MSH", 9) == "ORU^R01^ORU_R01" and field_of(message, "MSH", 5) == "DEMO_EHR"
    assert (
        field_of(message, "PID", 3) == "MRN000001^^^^MR"
    )  # the demo takes an MR of any authority, so names none
    assert field_of(message, "ORC", 2) == "PO-000001" and field_of(message, "ORC", 3) == "CHA999926ABC121^CGT"
    assert field_of(message, "OBR", 4) == "S1234^Demo autologous CAR-T^isbt128"
    assert field_of(message, "OBX", 5) == "COLLECTED^Cells collected^L"
    assert b"CGT-DIN" in message and b"A999914123458" in message
    await eventually(lambda: _true(outbound_of(gw).delivered == 1))
    assert outbound_of(gw).client.uncredited == 0 and await alerts(gw) == []


async def _true(value: bool) -> bool:
    return value


async def test_an_accepted_order_goes_back_as_orr_o02_answering_the_original_order(
    ehr: Ehr, gateways: Callable[..., Any]
) -> None:
    gw = await gateways(ehr.port)
    await place_over_mllp(gw, 2)
    await send_canonical(gw, "demo-manufacturer", event("order.accepted", coi("CHA999926ABC122")))
    message = await asyncio.wait_for(ehr.arrived.get(), 20)
    assert field_of(message, "MSH", 9) == "ORR^O02^ORR_O02"
    assert field_of(message, "MSA", 1) == "AA" and field_of(message, "MSA", 2) == "ORM-2"
    assert field_of(message, "ORC", 1) == "OK" and field_of(message, "ORC", 3) == "CHA999926ABC122^CGT"


async def test_another_sites_orders_are_never_sent_to_this_site(
    ehr: Ehr, gateways: Callable[..., Any]
) -> None:
    gw = await gateways(ehr.port)
    other = place(7, site=OTHER_SITE).model_copy(update={"refs": (coi("CHA999926OTHER7"),)})
    await send_canonical(gw, OTHER_SITE, other)
    await send_canonical(
        gw,
        OTHER_SITE,
        event(
            "collection.completed", coi("CHA999926OTHER7"), collected_at=datetime(2026, 11, 10, tzinfo=UTC)
        ),
    )
    await eventually(lambda: _true(outbound_of(gw).consumer.handled >= 1))
    await asyncio.sleep(0.3)
    assert ehr.received == []


async def test_an_ack_for_another_message_is_never_credited_and_ends_in_an_alert(
    ehr: Ehr, gateways: Callable[..., Any]
) -> None:
    ehr.behaviour = "wrong-id"
    gw = await gateways(ehr.port)
    await place_over_mllp(gw, 3)
    await send_canonical(gw, "demo-hospital", collected(3))

    async def alerted() -> bool:
        return len(await alerts(gw)) == 1

    await eventually(alerted)
    sent = {field_of(m, "MSH", 10) for m in ehr.received}
    assert len(ehr.received) == 4 and len(sent) == 1  # 2 tries x 2 deliveries, one MSH-10 throughout
    assert outbound_of(gw).client.uncredited == 4 and outbound_of(gw).delivered == 0
    alert = (await alerts(gw))[0]
    assert alert["data"]["partner"] == "demo-hospital" and alert["data"]["attempts"] == 2
    assert alert["subject"] == "CHA999926ABC123"


async def test_a_reject_is_dead_lettered_at_once_with_an_alert(
    ehr: Ehr, gateways: Callable[..., Any]
) -> None:
    ehr.behaviour = "AR"
    gw = await gateways(ehr.port)
    await place_over_mllp(gw, 4)
    await send_canonical(gw, "demo-hospital", collected(4))

    async def alerted() -> bool:
        return len(await alerts(gw)) == 1

    await eventually(alerted)
    assert len(ehr.received) == 1
    assert (await alerts(gw))[0]["data"]["attempts"] == 1


async def test_an_unreachable_ehr_is_retried_then_alerted(gateways: Callable[..., Any]) -> None:
    closed = Ehr()
    port = await closed.start()
    await closed.stop()  # nothing listens there any more
    gw = await gateways(port)
    await place_over_mllp(gw, 5)
    await send_canonical(gw, "demo-hospital", collected(5))

    async def alerted() -> bool:
        return len(await alerts(gw)) == 1

    await eventually(alerted)
    assert "could not be reached" in (await alerts(gw))[0]["data"]["reason"]
