"""The gateway as users run it: `cgt-gateway serve` processes, real HTTP, real RabbitMQ, real databases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import httpx
import pytest

from gateway.bus.topology import declare_consumer_queue
from tests.integration.test_relay import drain
from tests.support.builders import coi, envelope_json, event, place, placer
from tests.support.manufacturing import TESTS
from tests.support.private_broker import free_port

HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}
MANUFACTURER = {"X-API-Key": "demo-manufacturer-key", "Content-Type": "application/json"}
OPERATOR = {"X-API-Key": "demo-operator-key"}


class GatewayProcess:
    """`cgt-gateway serve` (or another command: `relay`) in a process of its own."""

    def __init__(
        self, tmp: Path, database_url: str, amqp_url: str, command: str = "serve", **settings: str
    ) -> None:
        self.port = free_port()
        self.log = tmp / f"{command}-{self.port}.log"
        env = {
            **os.environ,
            "CGT_DATABASE_URL": database_url,
            "CGT_AMQP_URL": amqp_url,
            "CGT_HTTP_PORT": str(self.port),
            "CGT_MLLP_PORT": str(free_port()),
            "CGT_OUTBOX_POLL_SECONDS": "0.1",
            **{f"CGT_{name.upper()}": value for name, value in settings.items()},
        }
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.entrypoints.cli", command],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/health", timeout=2).json().get("status") == "ok":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"gateway did not become healthy:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def start_gateways(tmp_path: Path, amqp_url: str) -> Iterator[object]:
    started: list[GatewayProcess] = []

    def start(
        database_url: str, count: int = 1, command: str = "serve", **settings: str
    ) -> list[GatewayProcess]:
        new = [GatewayProcess(tmp_path, database_url, amqp_url, command, **settings) for _ in range(count)]
        for gateway in new:
            if command == "serve":
                gateway.wait_healthy()
        started.extend(new)
        return new

    yield start
    for gateway in started:
        gateway.stop()


async def queue_for(
    amqp_url: str, name: str, patterns: list[str]
) -> tuple[aio_pika.abc.AbstractConnection, aio_pika.abc.AbstractQueue]:
    connection = await aio_pika.connect(amqp_url)
    queue = await declare_consumer_queue(await connection.channel(), name, patterns, delivery_limit=5)
    await queue.purge()
    return connection, queue


async def test_one_journey_on_the_embedded_defaults(
    tmp_path: Path, amqp_url: str, start_gateways: object
) -> None:
    connection, queue = await queue_for(amqp_url, "e2e.journey", ["#"])
    [gateway] = start_gateways(f"sqlite+aiosqlite:///{tmp_path}/var/gateway.db")  # type: ignore[operator]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        placed = await http.post("/api/messages", content=envelope_json("h-1", place(1)), headers=HOSPITAL)
        assert placed.status_code == 201, placed.text
        the_coi = placed.json()["coi"]
        steps = [
            (
                HOSPITAL,
                event("collection.scheduled", placer("PO-000001"), scheduled_start="2026-11-09T08:00:00Z"),
            ),
            (
                HOSPITAL,
                event(
                    "collection.completed",
                    placer("PO-000001"),
                    collected_at="2026-11-09T12:00:00Z",
                    din="A999914123458",
                ),
            ),
            (
                MANUFACTURER,
                event(
                    "manufacturing.material_received", coi(the_coi), scanned_coi=the_coi, din="A999914123458J"
                ),
            ),
            (MANUFACTURER, event("manufacturing.started", coi(the_coi), batch_id="B-1")),
            *(
                (
                    MANUFACTURER,
                    event("manufacturing.qc_result", coi(the_coi), batch_id="B-1", test=t, result="pass"),
                )
                for t in TESTS
            ),
            (MANUFACTURER, event("manufacturing.released", coi(the_coi), batch_id="B-1")),
        ]
        for n, (headers, command) in enumerate(steps):
            response = await http.post(
                "/api/messages", content=envelope_json(f"s-{n}", command), headers=headers
            )
            assert response.status_code == 201, response.text
        order = (await http.get(f"/api/orders/{the_coi}", headers=OPERATOR)).json()
        assert order["order"]["status"] == "released"
        assert len(order["timeline"]) == 6 + len(TESTS)
    delivered = await drain(queue, settle=1.5)
    await queue.delete(if_unused=False, if_empty=False)  # the vhost is shared by the session
    await connection.close()
    assert [m.routing_key for m in delivered] == [
        "order.placed",
        "collection.scheduled",
        "collection.completed",
        "manufacturing.material_received",
        "manufacturing.started",
        *["manufacturing.qc_result"] * len(TESTS),
        "manufacturing.released",
    ]
    assert {e["id"] for e in order["timeline"]} == {m.message_id for m in delivered}


async def test_two_gateway_processes_share_one_postgresql_and_publish_each_event_once(
    database_url: str, amqp_url: str, start_gateways: object
) -> None:
    if not database_url.startswith("postgresql"):
        return  # the SQLite variant of this scale-out case is the single-process test above
    connection, queue = await queue_for(amqp_url, "e2e.scale", ["order.placed"])
    first, second = start_gateways(database_url, count=2)  # type: ignore[operator]
    async with httpx.AsyncClient(timeout=10) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    f"{(first, second)[n % 2].url}/api/messages",
                    content=envelope_json(f"m-{n}", place(n)),
                    headers=HOSPITAL,
                )
                for n in range(1, 41)
            )
        )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201]
    delivered = await drain(queue, settle=2.0)
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
    expected = sorted(r.json()["event_ids"][0] for r in responses)
    assert sorted(m.message_id or "" for m in delivered) == expected


async def test_separate_relay_processes_publish_what_serve_stored_each_event_once(
    database_url: str, amqp_url: str, start_gateways: object
) -> None:
    connection, queue = await queue_for(amqp_url, "e2e.separate", ["order.placed"])
    [gateway] = start_gateways(database_url, relay="separate")  # type: ignore[operator]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        responses = [
            await http.post("/api/messages", content=envelope_json(f"m-{n}", place(n)), headers=HOSPITAL)
            for n in range(1, 21)
        ]
        assert all(r.status_code == 201 for r in responses)
        health = (await http.get("/health")).json()
        # serve stored them and publishes nothing itself; it still watches the broker.
        assert (health["relay"], health["broker"], health["outbox"]["backlog"]) == ("separate", "up", 20)
        start_gateways(database_url, count=2, command="relay")  # type: ignore[operator]
        deadline = time.monotonic() + 30
        while (await http.get("/health")).json()["outbox"]["backlog"] and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        delivered = await drain(queue, settle=1.0)
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
    expected = sorted(r.json()["event_ids"][0] for r in responses)
    assert sorted(m.message_id or "" for m in delivered) == expected
