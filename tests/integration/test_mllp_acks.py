"""Batches and acknowledgement modes over a real MLLP socket: an FHS/BHS batch and several
messages in one frame are taken message by message and answered in one frame (v2.5 §2.10.3);
an unknown MSH-15 is answered as AL; MSH-15 NE with MSH-16 AL gets its application
acknowledgement, on this connection or on the site's outbound link."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.hl7v2.adapter import Hl7v2
from adapters.hl7v2.serve import Hl7v2Service
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.settings import Settings
from gateway.store import tables as t
from tests.fixtures.hl7v2.peers import Ehr, Engine, field_of
from tests.integration.test_hl7_outbound import site_profile

BHS = "BHS|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||||BATCH-7\r"


def order(n: int, modes: str = "", sender: str = "DEMO_EHR", newline: str = "\r") -> bytes:
    return newline.join(
        [
            f"MSH|^~\\&|{sender}|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|B{n}|P|2.5.1{modes}",
            f"PID|1||MRN{n:06d}^^^DEMOHOSP^MR||Testpatient^N{n}||19700101|F",
            f"ORC|NW|PO-{n:06d}",
            f"OBR|1|PO-{n:06d}||S1234^Demo^ISBT128",
            "",
        ]
    ).encode()


def segments(answer: bytes) -> list[list[str]]:
    return [line.split("|") for line in answer.decode().split("\r") if line]


def acks_in(answer: bytes) -> list[tuple[str, str]]:
    return [(s[1], s[2]) for s in segments(answer) if s[0] == "MSA"]


async def make_gateway(tmp_path: Path, amqp_url: str, profiles: Path | None = None, **kw: object) -> Gateway:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,hl7v2",
        profile_dirs={"hl7v2": profiles} if profiles else {},
        **kw,  # type: ignore[arg-type]
    )
    gw = bootstrap(settings)
    gw.adapters["hl7v2"] = Hl7v2(queue_prefix=f"hl7v2-{tmp_path.name}")
    await gw.start()
    return gw


@pytest.fixture
async def gateway(tmp_path: Path, amqp_url: str) -> AsyncIterator[Gateway]:
    gw = await make_gateway(tmp_path, amqp_url)
    yield gw
    await gw.stop()


def port(gw: Gateway) -> int:
    return next(s for s in gw.transports if isinstance(s, Hl7v2Service)).port


async def count(gw: Gateway, table: t.Table) -> int:
    async with gw.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_batch_is_taken_message_by_message_and_answered_with_a_batch_ack(gateway: Gateway) -> None:
    bad = b"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|B3|P|2.9\r"
    sent = (
        b"FHS|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||||FILE-1\r"
        + BHS.encode()
        + order(1)
        + order(2)
        + bad
        + b"BTS|3\rFTS|1\r"
    )
    engine = await Engine.connect(port(gateway))
    answer = await engine.send(sent)
    again = await engine.send(sent)  # a resent batch: the same answers, nothing new
    await engine.close()
    names = [s[0] for s in segments(answer)]
    assert names == ["FHS", "BHS", "MSH", "MSA", "MSH", "MSA", "MSH", "MSA", "ERR", "BTS", "FTS"]
    assert acks_in(answer) == [("AA", "B1"), ("AA", "B2"), ("AR", "B3")]
    fhs, bhs = segments(answer)[0], segments(answer)[1]
    assert fhs[11] == "FILE-1" and bhs[11] == "BATCH-7"  # FHS-12 / BHS-12: what is answered
    assert bhs[4] == "DEMO_EHR" and segments(answer)[-2] == ["BTS", "3"]
    assert acks_in(again) == acks_in(answer)
    assert await count(gateway, t.orders) == 2
    assert await count(gateway, t.inbound_messages) == 4  # two orders once; the refusal kept each time


async def test_several_messages_in_one_frame_get_their_acks_in_order_in_one_frame(gateway: Gateway) -> None:
    engine = await Engine.connect(port(gateway))
    answer = await engine.send(order(4, newline="\r\n") + order(5, newline="\r\n"))
    await engine.close()
    assert [s[0] for s in segments(answer)] == ["MSH", "MSA", "MSH", "MSA"]
    assert acks_in(answer) == [("AA", "B4"), ("AA", "B5")]
    assert await count(gateway, t.orders) == 2


async def test_a_batch_of_messages_that_want_no_ack_gets_an_empty_batch_and_is_applied(
    gateway: Gateway,
) -> None:
    engine = await Engine.connect(port(gateway))
    answer = await engine.send(BHS.encode() + order(6, "|||NE|NE") + b"BTS|1\r")
    await engine.close()
    assert [s[0] for s in segments(answer)] == ["BHS", "BTS"] and segments(answer)[-1] == ["BTS", "0"]
    assert await count(gateway, t.orders) == 1


async def test_an_unknown_msh_15_is_answered_as_al(gateway: Gateway) -> None:
    engine = await Engine.connect(port(gateway))
    ack = await engine.send(order(7, "|||XX|NE"))
    await engine.close()
    assert field_of(ack, "MSA", 1) == "CA" and field_of(ack, "MSA", 2) == "B7"
    assert await count(gateway, t.orders) == 1


async def test_ne_al_gets_the_application_ack_on_the_connection_without_an_outbound_link(
    gateway: Gateway,
) -> None:
    engine = await Engine.connect(port(gateway))
    applied = await engine.send(order(8, "|||NE|AL"))
    refused = await engine.send(order(9, "|||NE|AL", sender="STRANGER"))
    await engine.close()
    assert field_of(applied, "MSA", 1) == "AA" and field_of(applied, "MSA", 2) == "B8"
    assert field_of(refused, "MSA", 1) == "AR" and field_of(refused, "MSA", 2) == "B9"
    assert await count(gateway, t.orders) == 1


async def test_ne_al_gets_the_application_ack_on_the_sites_outbound_link(
    tmp_path: Path, amqp_url: str
) -> None:
    ehr = Ehr()
    profiles = site_profile(tmp_path / "profiles", await ehr.start(), events=["shipment.picked_up"])
    gw = await make_gateway(tmp_path, amqp_url, profiles)
    try:
        engine = await Engine.connect(port(gw))
        await engine.write(b"\x0b" + order(10, "|||NE|AL") + b"\x1c\x0d")
        application = await asyncio.wait_for(ehr.arrived.get(), 10)
        with pytest.raises(TimeoutError):  # and nothing on the connection it came on
            async with asyncio.timeout(0.3):
                await engine.reader.read(1)
        await engine.close()
    finally:
        await gw.stop()
        await ehr.stop()
    assert field_of(application, "MSA", 1) == "AA" and field_of(application, "MSA", 2) == "B10"
    assert field_of(application, "MSH", 15) == "AL"  # the EHR answers it, as the link expects


async def test_an_application_ack_the_ehr_never_answers_is_retried_then_logged(
    tmp_path: Path, amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    ehr = Ehr(behaviour="silent")
    profiles = site_profile(tmp_path / "profiles", await ehr.start(), events=["shipment.picked_up"])
    gw = await make_gateway(tmp_path, amqp_url, profiles)
    try:
        engine = await Engine.connect(port(gw))
        await engine.write(b"\x0b" + order(11, "|||NE|AL") + b"\x1c\x0d")
        first = await asyncio.wait_for(ehr.arrived.get(), 10)
        again = await asyncio.wait_for(ehr.arrived.get(), 10)  # the link's second attempt
        committed = await engine.send(order(12, "|||AL|NE"))  # the connection serves on meanwhile
        await engine.close()
    finally:
        await gw.stop()
        await ehr.stop()
    assert first == again and field_of(first, "MSA", 2) == "B11"
    assert field_of(committed, "MSA", 1) == "CA"
    assert any(
        "application acknowledgement" in r.getMessage() and "not delivered" in r.getMessage()
        for r in caplog.records
    )
