"""Shared fixtures: real SQLite and PostgreSQL databases, the real RabbitMQ (in a private vhost)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.db import create_engine, dispose
from gateway.store.migrate import migrate
from tests.fixtures.hl7v2.peers import Ehr

PG_ADMIN = os.environ.get("CGT_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_HOST = os.environ.get("CGT_TEST_PG_HOST", "postgres@127.0.0.1:5432")
RABBIT = os.environ.get("CGT_TEST_AMQP_HOST", "127.0.0.1:5672")


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """A new, empty database of each kind; the test fails (never skips) when PostgreSQL is down."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
        return
    name = f"cgt_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    yield f"postgresql+asyncpg://{PG_HOST}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    await migrate(eng)
    yield eng
    await dispose(eng)


def _vhost() -> Iterator[str]:
    host, port = RABBIT.split(":")
    if not port_open(host, int(port)):
        pytest.fail(f"RabbitMQ is not running at {RABBIT} (start it: rabbitmq-server -detached)")
    vhost = f"cgt-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    yield f"amqp://guest:guest@{RABBIT}/{vhost}"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False, capture_output=True)


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A private vhost on the local RabbitMQ for the session: tests never see anyone else's queues."""
    yield from _vhost()


@pytest.fixture
def fresh_amqp_url() -> Iterator[str]:
    """A vhost of the test's own, for tests about what no binding catches."""
    yield from _vhost()


@pytest.fixture
async def ehr() -> AsyncIterator[Ehr]:
    """A test EHR's MLLP endpoint, for outbound HL7 tests."""
    endpoint = Ehr()
    await endpoint.start()
    yield endpoint
    await endpoint.stop()
