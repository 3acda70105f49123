"""A SQLite file that was unwritable when the writer's connection opened: the gateway notices,
says so on /health, and recovers by itself once the file is writable again.

The file is made unwritable with `chattr +i` (immutable), which binds root too (the tests run as
root, who ignores permission bits). SQLite then opens the connection read-only, exactly as it does
for a file without write permission, and keeps it read-only after the flag is cleared.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from adapters.hl7v2.serve import Hl7v2Service
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.entrypoints.http import create_app
from gateway.settings import Settings
from gateway.store.db import create_engine, dispose, writer_for
from gateway.store.migrate import migrate
from tests.fixtures.hl7v2.peers import Engine, field_of
from tests.support.builders import envelope_json, place

HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}


def chattr(flag: str, path: Path) -> None:
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, f"chattr {flag} failed here: {done.stderr}"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "gw.db"
    yield path
    subprocess.run(["chattr", "-i", str(path)], capture_output=True)  # whatever the test did


@pytest.fixture
async def gateway(database: Path, amqp_url: str) -> AsyncIterator[Gateway]:
    url = f"sqlite+aiosqlite:///{database}"
    engine = create_engine(url)
    await migrate(engine)  # the schema exists; no connection of the gateway's is open yet
    await dispose(engine)
    chattr("+i", database)
    settings = Settings(env="test", database_url=url, amqp_url=amqp_url, mllp_port=0)
    running = bootstrap(settings)
    await running.start()  # migrations find nothing to do: they only read
    yield running
    await running.stop()


async def test_a_writer_opened_on_an_unwritable_file_recovers_without_restart(
    gateway: Gateway, database: Path
) -> None:
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        for n in (1, 2):
            refused = await http.post(
                "/api/messages", content=envelope_json(f"m{n}", place(n)), headers=HOSPITAL
            )
            assert refused.status_code == 503  # transient: the sender retries
        health = await http.get("/health")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "down" and body["database"] == "not writable"
        assert "SQLITE_READONLY" in body["database_detail"]
        assert body["intake"]["failed"] == 2 and body["intake"]["error_rate"] == 1.0

        chattr("-i", database)  # an operator fixes the file; nobody restarts the gateway

        accepted = await http.post("/api/messages", content=envelope_json("m1", place(1)), headers=HOSPITAL)
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["status"] == "applied"
        health = await http.get("/health")
        body = health.json()
        assert health.status_code == 200 and body["database"] == "up" and "database_detail" not in body
        assert body["intake"]["messages"] == 3 and body["intake"]["failed"] == 2


async def test_health_notices_an_unwritable_file_before_any_message(gateway: Gateway, database: Path) -> None:
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        assert (await http.get("/health")).json()["database"] == "not writable"
        chattr("-i", database)
        body = (await http.get("/health")).json()  # the probe's own connection was discarded
        assert body["database"] == "up" and body["intake"]["messages"] == 0


async def test_a_writer_held_up_by_a_lock_is_reported_and_then_writable_again(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    writer = writer_for(engine)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        assert await writer.unwritable(within=0.2) == "no write completed within 0.2 s"
        assert await writer.unwritable(within=0.2) is not None  # the same probe, still waiting
        other.execute("ROLLBACK")
        assert await writer.unwritable(within=15) is None
    finally:
        other.close()
        await dispose(engine)


async def test_an_hl7_sender_gets_ae_206_and_then_aa_for_the_same_message(
    gateway: Gateway, database: Path
) -> None:
    message = (
        b"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|RO1|P|2.5.1\r"
        b"PID|1||MRN000901^^^DEMOHOSP^MR||Testpatient^Readonly||19700101|F\r"
        b"ORC|NW|PO-000901\r"
        b"OBR|1|PO-000901||S1234^Demo^ISBT128\r"
    )
    mllp = next(s for s in gateway.transports if isinstance(s, Hl7v2Service)).port
    ehr = await Engine.connect(mllp)
    refused = await ehr.send(message)
    assert field_of(refused, "MSA", 1) == "AE" and field_of(refused, "ERR", 3).startswith("206^")
    chattr("-i", database)
    accepted = await ehr.send(message)  # the interface engine resends, on the same connection
    assert field_of(accepted, "MSA", 1) == "AA" and field_of(accepted, "MSA", 2) == "RO1"
    ehr.writer.close()
