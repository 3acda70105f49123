"""One MSH-10, two messages, over a real MLLP socket: a different message under a used control id
is refused (AR, or CR in enhanced mode, ERR code 205 at MSH-10), kept raw and audited, and the
first message keeps its ACK; a true repeat, whatever its line ends, gets that first ACK byte for
byte."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.hl7v2.adapter import Hl7v2
from adapters.hl7v2.fingerprint import fingerprint
from adapters.hl7v2.serve import Hl7v2Service
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.settings import Settings
from gateway.store import tables as t
from tests.fixtures.hl7v2.peers import Engine, field_of
from tests.integration.test_hl7_mllp import order as orm


def order(n: int, control: str, *, version: str = "2.5.1", enhanced: bool = False) -> bytes:
    raw = orm(n, control=control, version=version)
    return raw.replace(f"|P|{version}\r".encode(), f"|P|{version}|||AL|NE\r".encode(), 1) if enhanced else raw


@pytest.fixture
async def gateway(tmp_path: Path, amqp_url: str) -> AsyncIterator[Gateway]:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,hl7v2",
    )
    gw = bootstrap(settings)
    gw.adapters["hl7v2"] = Hl7v2(read_timeout=0.5)
    await gw.start()
    yield gw
    await gw.stop()


async def connect(gw: Gateway) -> Engine:
    return await Engine.connect(next(s for s in gw.transports if isinstance(s, Hl7v2Service)).port)


async def count(gw: Gateway, table: t.Table) -> int:
    async with gw.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def refusals(gw: Gateway) -> list[tuple[bytes, str, str]]:
    """Raw bytes, outcome and audit action of every refused message."""
    m, a = t.inbound_messages, t.audit_records
    async with gw.engine.connect() as conn:
        audit = {r.detail["inbound_id"]: r.action for r in await conn.execute(select(a.c.action, a.c.detail))}
        kept = (
            await conn.execute(select(m.c.id, m.c.raw, m.c.outcome).where(m.c.outcome == "rejected"))
        ).all()
    return [(r.raw, r.outcome, audit[r.id]) for r in kept]


@pytest.mark.parametrize(
    ("enhanced", "code"), [(False, "AR"), (True, "CR")], ids=["original mode", "enhanced mode"]
)
async def test_another_message_under_a_used_control_id_is_refused_205_and_kept(
    gateway: Gateway, enhanced: bool, code: str
) -> None:
    a, b = order(1, "X1", enhanced=enhanced), order(2, "X1", enhanced=enhanced)  # other patient, order
    engine = await connect(gateway)
    first = await engine.send(a)
    refused = await engine.send(b)
    again = await engine.send(a)
    await engine.close()

    assert field_of(first, "MSA", 1) == ("CA" if enhanced else "AA")
    assert (field_of(refused, "MSA", 1), field_of(refused, "MSA", 2)) == (code, "X1")
    assert field_of(refused, "ERR", 2) == "MSH^1^10"
    assert field_of(refused, "ERR", 3) == "205^Duplicate key identifier^HL70357"
    assert field_of(refused, "ERR", 4) == "E" and "new id" in field_of(refused, "ERR", 8)
    assert b"Testpatient" not in refused and b"MRN" not in refused
    assert again == first  # the first message keeps its ACK
    assert await refusals(gateway) == [(b, "rejected", "message.rejected")]
    assert await count(gateway, t.orders) == 1 and await count(gateway, t.idempotency_keys) == 1


async def test_a_refusal_in_v2_3_names_205_in_err_1(gateway: Gateway) -> None:
    engine = await connect(gateway)
    await engine.send(order(1, "X1", version="2.3"))
    refused = await engine.send(order(2, "X1", version="2.3"))
    await engine.close()
    assert field_of(refused, "MSA", 1) == "AR"
    assert field_of(refused, "ERR", 1) == "MSH^1^10^205&Duplicate key identifier&HL70357"


@pytest.mark.parametrize(
    "variant",
    [
        lambda raw: raw.replace(b"\r", b"\n"),
        lambda raw: raw.replace(b"\r", b"\r\n"),
        lambda raw: raw + b"\r\r",
        lambda raw: raw.rstrip(b"\r"),
    ],
    ids=["LF", "CRLF", "extra terminators", "no final terminator"],
)
async def test_a_true_repeat_gets_the_first_ack_byte_for_byte(gateway: Gateway, variant: object) -> None:
    raw = order(1, "X1")
    engine = await connect(gateway)
    first = await engine.send(raw)
    again = await engine.send(variant(raw))  # type: ignore[operator]
    await engine.close()
    assert field_of(first, "MSA", 1) == "AA" and again == first
    assert await count(gateway, t.inbound_messages) == 1 and await count(gateway, t.orders) == 1


def test_the_fingerprint_drops_only_what_carries_no_meaning() -> None:
    raw = order(1, "X1")
    same = [
        b"\x0b" + raw + b"\x1c\r",
        b"\xef\xbb\xbf" + raw,
        raw.replace(b"\r", b"\r\n") + b"\r\n",
        raw.replace(b"\r", b"\n\n"),
    ]
    assert {fingerprint(r) for r in same} == {fingerprint(raw)} == {raw.rstrip(b"\r")}
    assert fingerprint(order(2, "X1")) != fingerprint(raw)
    assert fingerprint(raw.replace(b"Testpatient", b"Testpatient ")) != fingerprint(raw)
