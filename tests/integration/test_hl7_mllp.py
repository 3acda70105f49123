"""The MLLP listener of a real gateway (SQLite file, real RabbitMQ) against a real MLLP client:
ACK content, duplicates, bad frames, disconnects, oversize, wrong version, unknown sender, the
ADT filter, and a gateway that keeps serving through all of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.hl7v2.adapter import Hl7v2
from adapters.hl7v2.serve import Hl7v2Service
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.errors import TransientError
from gateway.settings import Settings
from gateway.store import tables as t
from tests.fixtures.hl7v2.peers import END, START, Engine, field_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2"
LIMIT = 16 * 1024


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.hl7").read_bytes()


def order(n: int, *, control: str | None = None, version: str = "2.5.1", sender: str = "DEMO_EHR") -> bytes:
    return (
        f"MSH|^~\\&|{sender}|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|{control or f'O{n}'}|P|{version}\r"
        f"PID|1||MRN{n:06d}^^^DEMOHOSP^MR||Testpatient^N{n}||19700101|F\r"
        f"ORC|NW|PO-{n:06d}\r"
        f"OBR|1|PO-{n:06d}||S1234^Demo^ISBT128\r"
    ).encode()


def adt(
    mrn: str, control: str, trigger: str = "A08", *, name: str | None = None, birth: str = "19700101"
) -> bytes:
    """An ADT of the patient `order(n)` placed for MRN{n:06d}: same name and birth date unless told."""
    name = name or f"Testpatient^N{int(mrn.removeprefix('MRN'))}"
    return (
        f"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ADT^{trigger}^ADT_A01|{control}|P|2.5.1\r"
        f"EVN|{trigger}|20261102091500\r"
        f"PID|1||{mrn}^^^DEMOHOSP^MR||{name}||{birth}|F\r"
    ).encode()


@pytest.fixture
async def gateway(tmp_path: Path, amqp_url: str) -> AsyncIterator[Gateway]:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,hl7v2",  # the dialects these tests speak
        max_body_bytes=LIMIT,
    )
    gw = bootstrap(settings)
    gw.adapters["hl7v2"] = Hl7v2(read_timeout=0.5)
    await gw.start()
    yield gw
    await gw.stop()


def port(gw: Gateway) -> int:
    return next(s for s in gw.transports if isinstance(s, Hl7v2Service)).port


async def count(gw: Gateway, table: t.Table, *where: object) -> int:
    async with gw.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())  # type: ignore[arg-type]


async def test_an_order_is_acknowledged_aa_after_it_is_stored(gateway: Gateway) -> None:
    engine = await Engine.connect(port(gateway))
    ack = await engine.send(fixture("orm_o01_new_order"))
    await engine.close()
    assert field_of(ack, "MSA", 1) == "AA" and field_of(ack, "MSA", 2) == "ORM0001"
    assert field_of(ack, "MSH", 5) == "DEMO_EHR" and field_of(ack, "MSH", 9) == "ACK^O01^ACK"
    async with gateway.engine.connect() as conn:
        orders = (await conn.execute(select(t.orders.c.coi, t.orders.c.status))).all()
        inbound = (await conn.execute(select(t.inbound_messages.c.transport, t.inbound_messages.c.raw))).all()
    assert [tuple(o) for o in orders] == [("CHA999926ABC123", "ordered")]
    assert inbound == [("mllp", fixture("orm_o01_new_order"))]


async def test_a_repeated_control_id_gets_the_first_ack_and_changes_nothing(gateway: Gateway) -> None:
    engine = await Engine.connect(port(gateway))
    first = await engine.send(order(1))
    again = await engine.send(order(1))  # other content under one MSH-10: test_hl7_reused_ids.py
    await engine.close()
    assert first == again and field_of(first, "MSA", 1) == "AA"
    assert await count(gateway, t.orders) == 1
    assert await count(gateway, t.inbound_messages) == 1
    assert await count(gateway, t.events) == 1


async def test_many_connections_many_messages_each_all_answered_in_order(gateway: Gateway) -> None:
    async def session(c: int) -> list[str]:
        engine = await Engine.connect(port(gateway))
        # a pipelining sender: all frames first, then the ACKs, which come back in order
        await engine.write(b"".join(START + order(c * 100 + i) + END for i in range(10)))
        acks = [await engine.read_frame() for _ in range(10)]
        await engine.close()
        return [field_of(a, "MSA", 1) + ":" + field_of(a, "MSA", 2) for a in acks]

    results = await asyncio.gather(*(session(c) for c in range(1, 7)))
    for c, acks in enumerate(results, start=1):
        assert acks == [f"AA:O{c * 100 + i}" for i in range(10)]
    assert await count(gateway, t.orders) == 60


async def test_garbage_and_frames_that_are_not_hl7_are_answered_and_kept(gateway: Gateway) -> None:
    engine = await Engine.connect(port(gateway))
    await engine.write(b"GET / HTTP/1.1\r\n\r\n\x00\xff")  # outside any frame: skipped
    not_hl7 = await engine.send(b"hello \xff\xfe world")
    bad_bytes = await engine.send(fixture("malformed_bad_utf8"))
    still_fine = await engine.send(order(3))
    await engine.close()
    assert field_of(not_hl7, "MSA", 1) == "AR" and field_of(not_hl7, "MSA", 2) == ""
    assert field_of(bad_bytes, "MSA", 1) == "AR" and field_of(bad_bytes, "MSA", 2) == "BAD0001"
    assert field_of(bad_bytes, "ERR", 2) == "MSH^1^18" and field_of(bad_bytes, "ERR", 3).startswith("102^")
    assert field_of(still_fine, "MSA", 1) == "AA"
    async with gateway.engine.connect() as conn:
        kept = dict(
            (await conn.execute(select(t.inbound_messages.c.raw, t.inbound_messages.c.outcome))).all()
        )
    assert kept[b"hello \xff\xfe world"] == "rejected" and kept[fixture("malformed_bad_utf8")] == "rejected"


async def test_a_sender_that_disconnects_mid_frame_leaves_nothing_and_the_gateway_serves_on(
    gateway: Gateway,
) -> None:
    for _ in range(3):
        engine = await Engine.connect(port(gateway))
        await engine.write(START + order(4)[:40])
        await engine.close()
    engine = await Engine.connect(port(gateway))
    ack = await engine.send(order(5))
    await engine.close()
    assert field_of(ack, "MSA", 1) == "AA"
    assert await count(gateway, t.inbound_messages) == 1


async def test_a_half_sent_frame_is_dropped_after_the_read_timeout(gateway: Gateway) -> None:
    engine = await Engine.connect(port(gateway))
    await engine.write(START + order(6)[:40])
    assert await engine.closed_by_peer(timeout=5.0)  # read timeout 0.5 s in this gateway
    await engine.close()
    assert await count(gateway, t.inbound_messages) == 0


async def test_an_oversize_frame_is_refused_ar_and_the_next_frame_is_taken(gateway: Gateway) -> None:
    engine = await Engine.connect(port(gateway))
    big = order(7, control="BIG1") + b"NTE|1||" + b"x" * (LIMIT * 3) + b"\r"
    refused = await engine.send(big)
    taken = await engine.send(order(8))
    await engine.close()
    assert field_of(refused, "MSA", 1) == "AR" and field_of(refused, "MSA", 2) == "BIG1"
    assert "larger than" in field_of(refused, "ERR", 8)
    assert field_of(taken, "MSA", 1) == "AA"
    assert await count(gateway, t.orders) == 1


async def test_an_unsupported_version_is_ar_203(gateway: Gateway) -> None:
    engine = await Engine.connect(port(gateway))
    ack = await engine.send(order(9, version="2.9"))
    await engine.close()
    assert field_of(ack, "MSA", 1) == "AR" and field_of(ack, "MSA", 2) == "O9"
    assert field_of(ack, "ERR", 2) == "MSH^1^12" and field_of(ack, "ERR", 3).startswith("203^")
    assert await count(gateway, t.orders) == 0


async def test_an_unknown_sender_is_ar_and_its_message_is_kept(gateway: Gateway) -> None:
    engine = await Engine.connect(port(gateway))
    raw = order(10, sender="STRANGER_EHR")
    ack = await engine.send(raw)
    await engine.close()
    assert field_of(ack, "MSA", 1) == "AR" and field_of(ack, "MSA", 2) == "O10"
    async with gateway.engine.connect() as conn:
        kept = (await conn.execute(select(t.inbound_messages.c.partner, t.inbound_messages.c.raw))).all()
    assert [tuple(k) for k in kept] == [("unknown:mllp", raw)]
    assert await count(gateway, t.orders) == 0


async def test_a_message_that_does_not_reconcile_is_held_with_an_aa_that_says_do_not_resend(
    gateway: Gateway,
) -> None:
    engine = await Engine.connect(port(gateway))
    ack = await engine.send(fixture("siu_s12_apheresis"))  # its order was never placed
    await engine.close()
    assert field_of(ack, "MSA", 1) == "AA" and field_of(ack, "ERR", 4) == "W"
    assert "do not resend" in field_of(ack, "ERR", 8)
    assert await count(gateway, t.quarantine) == 1


async def test_adt_of_unknown_patients_is_acknowledged_and_dropped_unstored(gateway: Gateway) -> None:
    engine = await Engine.connect(port(gateway))
    dropped = await engine.send(adt("MRN999999", "A1"))
    other_event = await engine.send(adt("MRN999999", "A2", trigger="A02"))
    placed = await engine.send(order(11))
    known = await engine.send(adt("MRN000011", "A3"))
    await engine.close()
    for ack in (dropped, other_event, placed, known):
        assert field_of(ack, "MSA", 1) == "AA"
    async with gateway.engine.connect() as conn:
        raws = [r for (r,) in (await conn.execute(select(t.inbound_messages.c.raw))).all()]
        types = [ty for (ty,) in (await conn.execute(select(t.events.c.type))).all()]
    assert not any(b"MRN999999" in r for r in raws)  # nothing of the unknown patient is stored
    assert len(raws) == 2 and sorted(types) == ["org.cgt.order.placed", "org.cgt.patient.updated"]


async def test_enhanced_mode_gets_a_commit_accept(gateway: Gateway) -> None:
    raw = order(12).replace(b"|P|2.5.1\r", b"|P|2.5.1|||AL|NE\r", 1)
    engine = await Engine.connect(port(gateway))
    ack = await engine.send(raw)
    await engine.close()
    assert field_of(ack, "MSA", 1) == "CA" and field_of(ack, "MSA", 2) == "O12"


async def test_iso_8859_1_and_a_merge_travel_over_mllp(gateway: Gateway) -> None:
    engine = await Engine.connect(port(gateway))
    cerner = await engine.send(fixture("orm_o01_cerner_style"))
    first = await engine.send(order(13))
    second = await engine.send(order(14).replace(b"Testpatient^N14", b"Testpatient^N13"))
    merge = (
        b"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ADT^A40^ADT_A39|M1|P|2.5.1\r"
        b"PID|1||MRN000013^^^DEMOHOSP^MR||Testpatient^N13||19700101|F\r"
        b"MRG|MRN000014^^^DEMOHOSP^MR\r"
    )
    merged = await engine.send(merge)
    await engine.close()
    for ack in (cerner, first, second, merged):
        assert field_of(ack, "MSA", 1) == "AA", ack
    assert cerner.decode("latin-1").split("\r")[0].endswith("8859/1")
    async with gateway.engine.connect() as conn:
        owners = {
            p
            for (p,) in (
                await conn.execute(select(t.orders.c.patient_id).where(t.orders.c.coi.isnot(None)))
            ).all()
        }
    assert len(owners) == 2  # the Cerner order's patient, and the merged one


async def test_a_database_outage_is_ae_206_and_a_bug_is_ae_207_and_the_listener_serves_on(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = gateway.intake.receive
    failure: list[Exception] = [TransientError(detail="database: OperationalError")]

    async def failing(*args: object, **kwargs: object) -> object:
        raise failure[0]

    engine = await Engine.connect(port(gateway))
    monkeypatch.setattr(gateway.intake, "receive", failing)
    outage = await engine.send(order(15))
    failure[0] = RuntimeError("a defect")
    defect = await engine.send(order(16))
    monkeypatch.setattr(gateway.intake, "receive", real)
    retried = await engine.send(order(15))  # the sender retries after AE: now it is taken
    await engine.close()
    assert field_of(outage, "MSA", 1) == "AE" and field_of(outage, "ERR", 3).startswith("206^")
    assert field_of(defect, "MSA", 1) == "AE" and field_of(defect, "ERR", 3).startswith("207^")
    assert field_of(retried, "MSA", 1) == "AA" and field_of(retried, "MSA", 2) == "O15"
    assert await count(gateway, t.orders) == 1


async def test_an_a08_that_changes_who_the_patient_is_is_held_and_a_routine_one_applies(
    gateway: Gateway,
) -> None:
    engine = await Engine.connect(port(gateway))
    await engine.send(order(12))
    reborn = await engine.send(adt("MRN000012", "B1", birth="20240101"))
    renamed = await engine.send(adt("MRN000012", "B2", name="Otherfamily^Someone"))
    routine = await engine.send(adt("MRN000012", "B3", name="TESTPATIENT^N12^Q"))
    await engine.close()
    for held in (reborn, renamed):
        assert field_of(held, "MSA", 1) == "AA" and b"held for identity review" in held
    assert field_of(routine, "MSA", 1) == "AA" and b"ERR" not in routine
    async with gateway.engine.connect() as conn:
        reasons = [r for (r,) in (await conn.execute(select(t.quarantine.c.reason))).all()]
    assert reasons == ["identity_change", "identity_change"]
