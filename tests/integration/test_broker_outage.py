"""With the broker stopped, messages are still accepted and held; when it returns, all are delivered."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aio_pika
import httpx

from gateway.bus.topology import declare_consumer_queue
from gateway.entrypoints.bootstrap import bootstrap
from gateway.entrypoints.http import create_app
from gateway.settings import Settings
from tests.integration.test_relay import drain
from tests.support.builders import envelope_json, place
from tests.support.private_broker import PrivateBroker

HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}


async def health(client: httpx.AsyncClient) -> dict[str, object]:
    response = await client.get("/health")
    body: dict[str, object] = response.json()
    return body


async def wait_for(client: httpx.AsyncClient, predicate: object, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    body = await health(client)
    while not predicate(body) and time.monotonic() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.2)
        body = await health(client)
    return body


async def test_the_broker_down_loses_and_refuses_nothing(
    tmp_path: Path, private_broker: PrivateBroker
) -> None:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        amqp_url=private_broker.url,
        outbox_poll_seconds=0.1,
        mllp_port=0,
    )
    gateway = bootstrap(settings)
    gateway.relay.max_backoff = 0.5
    await gateway.start()
    app = create_app(gateway)
    connection = await aio_pika.connect(private_broker.url)
    await declare_consumer_queue(await connection.channel(), "test.all", ["#"], delivery_limit=5)
    await connection.close()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            body = await wait_for(client, lambda b: b["broker"] == "up")
            assert body["broker"] == "up"

            private_broker.stop()
            event_ids = []
            for n in range(1, 6):
                response = await client.post(
                    "/api/messages", content=envelope_json(f"m{n}", place(n)), headers=HOSPITAL
                )
                assert response.status_code == 201, response.text
                event_ids.extend(response.json()["event_ids"])
            body = await wait_for(client, lambda b: b["broker"] == "down")
            assert body["broker"] == "down" and body["database"] == "up"
            assert body["outbox"]["backlog"] == 5  # type: ignore[index]
            assert body["status"] == "degraded"

            private_broker.start()
            body = await wait_for(client, lambda b: b["broker"] == "up" and b["outbox"]["backlog"] == 0)
            assert body["outbox"]["backlog"] == 0  # type: ignore[index]
    finally:
        await gateway.stop()

    connection = await aio_pika.connect(private_broker.url)
    queue = await (await connection.channel()).get_queue("test.all")
    delivered = await drain(queue)
    await connection.close()
    assert sorted(m.message_id or "" for m in delivered) == sorted(event_ids)
