"""The MLLP listener's limits against a hostile network, on real sockets with small settings:
idle connections closed, a trickled frame dropped at its total deadline, connections capped per
source address and in total (with the metric), and an unknown sender's messages kept only
within a size, rate and volume quota."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from adapters.hl7v2.adapter import Hl7v2
from adapters.hl7v2.serve import Hl7v2Service
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.settings import Settings
from gateway.store import tables as t
from tests.fixtures.hl7v2.peers import END, START, Engine, field_of

IDLE, FRAME = 0.5, 1.0


def order(n: int, *, sender: str = "DEMO_EHR", padding: int = 0) -> bytes:
    return (
        f"MSH|^~\\&|{sender}|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|L{n}|P|2.5.1\r"
        f"PID|1||MRN{n:06d}^^^DEMOHOSP^MR||Testpatient^N{n}||19700101|F\r"
        f"ORC|NW|PO-{n:06d}\rOBR|1|PO-{n:06d}||S1234^Demo^ISBT128\r"
        + ("NTE|1||" + "x" * padding + "\r")
        * bool(padding)
    ).encode()


@pytest.fixture
async def gateway(tmp_path: Path, amqp_url: str) -> AsyncIterator[Gateway]:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,hl7v2",
        mllp_idle_seconds=IDLE,
        mllp_frame_seconds=FRAME,
        mllp_max_connections=6,
        mllp_max_connections_per_source=3,
        mllp_unknown_max_bytes=2000,
        mllp_unknown_messages=3,
        mllp_unknown_volume_bytes=3000,
    )
    gw = bootstrap(settings)
    gw.adapters["hl7v2"] = Hl7v2()
    await gw.start()
    yield gw
    await gw.stop()


def port(gw: Gateway) -> int:
    return next(s for s in gw.transports if isinstance(s, Hl7v2Service)).port


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def connect(gw: Gateway, source: str = "127.0.0.1") -> Engine:
    reader, writer = await asyncio.open_connection("127.0.0.1", port(gw), local_addr=(source, 0))
    return Engine(reader, writer)


async def stored(gw: Gateway) -> int:
    async with gw.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(t.inbound_messages))).scalar_one())


async def test_an_idle_connection_is_closed_and_bytes_outside_frames_do_not_keep_it_open(
    gateway: Gateway,
) -> None:
    before = metric("cgt_mllp_connections_closed_total", reason="idle")
    quiet = await connect(gateway)
    answered = await connect(gateway)
    assert field_of(await answered.send(order(1)), "MSA", 1) == "AA"
    noisy = await connect(gateway)
    started = time.monotonic()
    with pytest.raises((ConnectionError, OSError)):
        for _ in range(30):  # garbage every 0.1 s, for far longer than the idle time
            await noisy.write(b"\r\n")
            await asyncio.sleep(0.1)
    assert IDLE <= time.monotonic() - started < IDLE + 1.5
    assert await quiet.closed_by_peer(timeout=2.0) and await answered.closed_by_peer(timeout=2.0)
    assert time.monotonic() - started < 3.0
    assert metric("cgt_mllp_connections_closed_total", reason="idle") - before == 3
    for engine in (quiet, answered, noisy):
        await engine.close()


async def test_a_trickled_frame_is_dropped_at_its_total_deadline_not_per_read(gateway: Gateway) -> None:
    before = metric("cgt_mllp_connections_closed_total", reason="frame_deadline")
    engine = await connect(gateway)
    await engine.write(START)
    started, sent = time.monotonic(), 0
    with pytest.raises((ConnectionError, OSError)):
        for byte in order(2):  # one byte every 50 ms: each read is quick, the frame never ends in time
            await engine.write(bytes([byte]))
            sent += 1
            if await engine.closed_by_peer(timeout=0.05):
                raise ConnectionError("closed by the gateway")
    elapsed = time.monotonic() - started
    assert FRAME <= elapsed < FRAME + 1.5 and sent < len(order(2))
    assert metric("cgt_mllp_connections_closed_total", reason="frame_deadline") - before == 1
    await engine.close()
    assert await stored(gateway) == 0


async def test_connections_are_capped_per_source_and_in_total_with_the_metric(gateway: Gateway) -> None:
    per_source = metric("cgt_mllp_connections_refused_total", reason="per_source")
    total = metric("cgt_mllp_connections_refused_total", reason="total")
    first = [await connect(gateway, "127.0.0.1") for _ in range(3)]
    over = await connect(gateway, "127.0.0.1")
    assert await over.closed_by_peer(timeout=2.0)  # a fourth from the same address: closed at once
    assert metric("cgt_mllp_connections_refused_total", reason="per_source") - per_source == 1
    second = [await connect(gateway, "127.0.0.2") for _ in range(3)]
    beyond = await connect(gateway, "127.0.0.3")
    assert await beyond.closed_by_peer(timeout=2.0)  # six open: the total cap
    assert metric("cgt_mllp_connections_refused_total", reason="total") - total == 1
    assert metric("cgt_mllp_connections") == 6
    # the connections inside the caps are served, and a freed place is taken again
    assert field_of(await first[0].send(order(3)), "MSA", 1) == "AA"
    await second[0].close()
    await asyncio.sleep(0.1)
    again = await connect(gateway, "127.0.0.3")
    assert field_of(await again.send(order(4)), "MSA", 1) == "AA"
    for engine in (*first, *second, over, beyond, again):
        await engine.close()


async def test_an_unknown_senders_messages_are_kept_within_size_rate_and_volume(gateway: Gateway) -> None:
    def not_kept(reason: str) -> float:
        return metric("cgt_mllp_unknown_not_kept_total", reason=reason)

    before = {r: not_kept(r) for r in ("size", "rate", "volume")}
    # one address, five small messages: three are kept (the rate cap), all five answered AR
    small = await connect(gateway, "127.0.0.1")
    answers = [await small.send(order(10 + i, sender="STRANGER")) for i in range(5)]
    assert [field_of(a, "MSA", 1) for a in answers] == ["AR"] * 5
    assert [field_of(a, "MSA", 2) for a in answers] == [f"L{10 + i}" for i in range(5)]
    # another address, ~1,300-byte messages: two fit in its 3,000 bytes (the volume cap)
    medium = await connect(gateway, "127.0.0.2")
    for i in range(3):
        assert field_of(await medium.send(order(20 + i, sender="STRANGER", padding=1100)), "MSA", 1) == "AR"
    # a third address: one message over the size limit is answered and not stored
    large = await connect(gateway, "127.0.0.3")
    assert field_of(await large.send(order(30, sender="STRANGER", padding=5000)), "MSA", 1) == "AR"
    # a registered sender is not touched by any of it
    assert field_of(await large.send(order(31)), "MSA", 1) == "AA"
    for engine in (small, medium, large):
        await engine.close()
    assert await stored(gateway) == 3 + 2 + 1
    assert {r: not_kept(r) - before[r] for r in before} == {"size": 1, "rate": 2, "volume": 1}


async def test_a_flood_of_frames_from_an_unknown_sender_adds_at_most_its_quota(gateway: Gateway) -> None:
    engine = await connect(gateway, "127.0.0.4")
    big = order(40, sender="STRANGER", padding=1500)
    await engine.write(b"".join(START + big + END for _ in range(40)))
    acks = [await engine.read_frame() for _ in range(40)]
    await engine.close()
    assert all(field_of(a, "MSA", 1) == "AR" for a in acks)
    async with gateway.engine.connect() as conn:
        sizes = [len(r) for (r,) in (await conn.execute(select(t.inbound_messages.c.raw))).all()]
    assert len(sizes) == 1 and sum(sizes) <= 3000  # the volume cap of this address


@pytest.mark.parametrize("mode", ["thread", "process"])
async def test_a_large_frame_is_parsed_off_the_loop_and_answered_as_any_other(
    tmp_path: Path, amqp_url: str, mode: str
) -> None:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,hl7v2",
        mllp_offload=mode,  # type: ignore[arg-type]
        mllp_offload_bytes=4096,
    )
    gw = bootstrap(settings)
    await gw.start()
    try:
        engine = await connect(gw)
        large = await engine.send(order(50, padding=8000))
        unmappable = await engine.send(order(51, padding=8000).replace(b"ORC|NW|", b"ORC|ZZ|"))
        small = await engine.send(order(52))
        adt = order(53, padding=8000).replace(b"ORM^O01^ORM_O01", b"ADT^A08^ADT_A01").replace(b"MRN", b"UNK")
        unknown_patient = await engine.send(adt)  # the ADT filter reads its PID-3 off the loop too
        await engine.close()
        kept = await stored(gw)
    finally:
        await gw.stop()
    answers = (large, unmappable, small, unknown_patient)
    assert [field_of(a, "MSA", 1) + field_of(a, "MSA", 2) for a in answers] == [
        "AAL50",
        "AEL51",
        "AAL52",
        "AAL53",
    ]
    assert kept == 3  # the ADT of a patient the gateway does not know is dropped unstored


async def test_while_a_large_frame_parses_other_senders_are_answered(
    tmp_path: Path, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.hl7v2 import offload

    release = threading.Event()
    real = offload.decode

    def slow(*args: Any) -> Any:
        release.wait(10)  # a parse that takes as long as the test says
        return real(*args)

    monkeypatch.setattr(offload, "decode", slow)
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,hl7v2",
        mllp_offload="thread",  # where the slow parse above is seen
        mllp_offload_bytes=4096,
    )
    gw = bootstrap(settings)
    await gw.start()
    try:
        heavy, peer = await connect(gw), await connect(gw)
        await heavy.write(START + order(60, padding=8000) + END)
        answers = [await peer.send(order(61 + i), timeout=5) for i in range(3)]  # answered meanwhile
        release.set()
        heavy_answer = await heavy.read_frame()
        for engine in (heavy, peer):
            await engine.close()
    finally:
        release.set()
        await gw.stop()
    assert [field_of(a, "MSA", 1) for a in answers] == ["AA"] * 3
    assert field_of(heavy_answer, "MSA", 1) == "AA" and field_of(heavy_answer, "MSA", 2) == "L60"


async def test_a_dead_parse_worker_costs_one_message_an_ae_and_a_new_worker_takes_the_next(
    tmp_path: Path, amqp_url: str
) -> None:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,hl7v2",
        mllp_offload="process",
        mllp_offload_bytes=4096,
    )
    gw = bootstrap(settings)
    await gw.start()
    try:
        engine = await connect(gw)
        first = await engine.send(order(70, padding=8000))
        listener = next(s for s in gw.transports if isinstance(s, Hl7v2Service)).listener
        pool = listener.offload._executor
        assert isinstance(pool, ProcessPoolExecutor)
        for process in list(pool._processes.values()):
            process.kill()
            process.join(5)
        lost = await engine.send(order(71, padding=8000))
        retried = await engine.send(order(71, padding=8000))
        await engine.close()
    finally:
        await gw.stop()
    assert field_of(first, "MSA", 1) == "AA"
    assert field_of(lost, "MSA", 1) == "AE" and field_of(lost, "ERR", 3).startswith("206^")
    assert field_of(retried, "MSA", 1) == "AA" and field_of(retried, "MSA", 2) == "L71"
