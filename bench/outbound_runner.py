"""Events a second through the outbound runner to one destination whose partner answers in
`--latency` seconds, on SQLite and the local RabbitMQ. Peer in the same run: the consumer the
outbound adapters used before (EventConsumer, one message at a time as the FHIR push ran it,
reading the order's view for each event as they did), same events, same partner latency.

    PYTHONPATH=. .venv/bin/python bench/outbound_runner.py --orders 200 --latency 0.005
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.bus.broker import Broker
from gateway.bus.consumer import EventConsumer
from gateway.bus.relay import OutboxRelay
from gateway.canonical.envelope import CloudEvent
from gateway.identity.authorise import load_assignments
from gateway.identity.disclosure import load_disclosure
from gateway.sdk import Destination, OrderView, OutboundRunner, Retry
from gateway.service.deliveries import StoreDeliveries
from gateway.service.intake import Intake
from gateway.settings import Settings
from gateway.store.db import create_engine, dispose
from gateway.store.migrate import migrate
from gateway.store.views import StoreViews
from tests.support.builders import coi, event, place
from tests.support.drive import AUTHORITY, PARTNERS, send

SITE = PARTNERS.get("demo-hospital")


@dataclass
class Partner:
    latency: float
    delivered: int = 0

    def render(self, event: CloudEvent, view: OrderView, profile: None) -> str:
        return event.id

    async def deliver(self, request: str) -> None:
        await asyncio.sleep(self.latency)
        self.delivered += 1


@dataclass
class Runtime:
    settings: Settings
    orders: StoreViews
    deliveries: StoreDeliveries


async def measure(
    label: str, orders: int, latency: float, amqp_url: str, start: Callable[..., Awaitable[Callable[[], int]]]
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp)}/bench.db")
        await migrate(engine)
        settings = Settings(env="test", amqp_url=amqp_url)
        views = StoreViews(
            engine,
            load_assignments(settings.assignments_file, PARTNERS),
            load_disclosure(settings.disclosure_dir, PARTNERS),
        )
        runtime = Runtime(settings, views, StoreDeliveries(engine))
        intake = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
        for n in range(orders):  # two events an order, committed before anything is published
            placed = await send(intake, place(n))
            await send(
                intake,
                event("collection.completed", coi(placed.coi or ""), collected_at="2026-11-10T13:00:00Z"),
            )
        delivered, stop = await start(runtime, engine, latency)
        relay = OutboxRelay(engine, Broker(amqp_url), poll_seconds=0.05, batch=500)
        began = time.perf_counter()
        relay.start()
        while delivered() < 2 * orders:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - began
        await relay.stop()
        await stop()
        await views.close()
        await dispose(engine)
    rate = 2 * orders / elapsed
    print(f"{label:<44} {rate:8.0f} events/s ({elapsed:.2f} s)")
    return rate


def runner(
    in_flight: int,
) -> Callable[..., Awaitable[tuple[Callable[[], int], Callable[[], Awaitable[None]]]]]:
    async def start(
        runtime: Runtime, engine: object, latency: float
    ) -> tuple[Callable[[], int], Callable[[], Awaitable[None]]]:
        partner = Partner(latency)
        destination = Destination(
            f"bench-{uuid.uuid4().hex[:8]}",
            SITE,
            "bench",
            None,
            ("order.#", "collection.#"),
            Retry(),
            in_flight,
        )
        run = OutboundRunner(runtime, destination, partner)
        await run.open()
        return (lambda: partner.delivered), run.stop

    return start


async def consumer(
    runtime: Runtime, engine: object, latency: float
) -> tuple[Callable[[], int], Callable[[], Awaitable[None]]]:
    partner = Partner(latency)

    async def deliver(event: CloudEvent) -> None:
        view = await runtime.orders.view(SITE, str(event.data["order_id"]))
        assert view is not None
        await partner.deliver(event.id)

    eng = runtime.deliveries.engine
    old = EventConsumer(
        eng,
        runtime.settings.amqp_url,
        name=f"bench-{uuid.uuid4().hex[:8]}",
        patterns=["order.#", "collection.#"],
        deliver=deliver,
        prefetch=1,
    )
    await old.start()
    return (lambda: partner.delivered), old.stop


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.005)
    args = parser.parse_args()
    vhost = f"cgt-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True
    )
    url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    try:
        print(f"{args.orders} orders x 2 events, partner latency {args.latency * 1000:.0f} ms")
        await measure("peer: EventConsumer, prefetch 1 (before)", args.orders, args.latency, url, consumer)
        await measure("runner, in_flight 1", args.orders, args.latency, url, runner(1))
        await measure("runner, in_flight 16 (default)", args.orders, args.latency, url, runner(16))
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)


if __name__ == "__main__":
    asyncio.run(main())
