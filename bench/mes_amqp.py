"""MES events over AMQP, end to end: published to `cgt.inbound.mes.<manufacturer>`, consumed by the
gateway's MES door, decoded (CloudEvents or B2MML), reconciled, committed, acked, and re-published
by the relay as canonical events; the clock stops when a queue bound to `cgt.events` holds every
canonical event. Beside it, in the same run: bare aio-pika consume + ack of the same messages, and
bare confirmed publishing (500 in flight), the broker's ceilings as the door and the relay meet them.

    .venv/bin/python bench/mes_amqp.py                  # 3,000 events a dialect, 3 runs, SQLite
    .venv/bin/python bench/mes_amqp.py --n 500 --runs 1 --profile  # where the time goes

Orders are prepared first (placed, collected, received, batch started), outside the clock; the
measured events are step completions and QC results on their batches (no status change, so the
lifecycle lets any number through), 10 an order.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import loops
from core_path import bare_publish, separate_relay
from scratch import private_vhost

from adapters.mes.inbound.adapter import adapter as mes
from adapters.mes.inbound.dialects import dialect_of
from gateway.bus.topology import consumer_queue_arguments
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.sdk import InboundQueues
from gateway.sdk.queues import inbound_queue_name
from gateway.store.reads import outbox_backlog
from tests.support import mes as m

DEMO = "demo-manufacturer"
QUEUE = inbound_queue_name("mes", DEMO)
PER_ORDER = 10


def cloud_events(orders: list[tuple[str, str]], n: int) -> list[bytes]:
    out = []
    for i in range(n):
        order_coi, batch = orders[i // PER_ORDER]
        if i % 2:
            out.append(
                m.cloud_event(
                    "step_completed", order_coi, f"ce-{order_coi}-{i}", batch_id=batch, step=f"step-{i}"
                )
            )
        else:
            out.append(
                m.cloud_event(
                    "qc_result",
                    order_coi,
                    f"ce-{order_coi}-{i}",
                    batch_id=batch,
                    test="viability",
                    result="pass",
                    value=91.5,
                    unit="%",
                )
            )
    return out


def b2mml_events(orders: list[tuple[str, str]], n: int) -> list[bytes]:
    out = []
    for i in range(n):
        order_coi, batch = orders[i // PER_ORDER]
        out.append(
            f"""<?xml version="1.0" encoding="UTF-8"?>
<NotifyOperationsEvent xmlns="http://www.mesa.org/xml/B2MML">
  <ApplicationArea><CreationDateTime>2026-11-12T08:00:00Z</CreationDateTime><BODID>bod-{order_coi}-{i}</BODID></ApplicationArea>
  <DataArea><Notify/><OperationsEvent><ID>OE-{i}</ID><EffectiveTimeStamp>2026-11-13T08:00:00Z</EffectiveTimeStamp>
    <Category>StepCompleted</Category>
    <OperationsEventProperty><ID>COI</ID><Value><ValueString>{order_coi}</ValueString></Value></OperationsEventProperty>
    <OperationsEventProperty><ID>BatchID</ID><Value><ValueString>{batch}</ValueString></Value></OperationsEventProperty>
    <OperationsEventProperty><ID>Step</ID><Value><ValueString>step-{i}</ValueString></Value></OperationsEventProperty>
  </OperationsEvent></DataArea>
</NotifyOperationsEvent>""".encode()
        )
    return out


async def prepare(gw: Gateway, orders: int, offset: int) -> list[tuple[str, str]]:
    """Orders in manufacturing, each with its batch bound: (COI, batch id)."""
    from adapters.mes.b2mml.adapter import adapter as b2mml
    from adapters.mes.cloudevents.adapter import adapter as cloudevents

    maker = gw.partners.get(DEMO)
    made = []
    for k in range(offset, offset + orders):
        order_coi = await m.collected_order(gw.door, gw.partners, k)
        got, _ = await gw.door.accept(
            cloudevents, maker, m.received(order_coi, f"rcv-{k}", m.din(k)), transport="amqp"
        )
        assert got.status == "applied", got
        started = m.b2mml_started(order_coi, f"start-{k}", f"B-{k}")
        got, _ = await gw.door.accept(b2mml, maker, started, transport="amqp")
        assert got.status == "applied", got
        made.append((order_coi, f"B-{k}"))
    return made


async def drained(gw: Gateway) -> None:
    """Wait until the relay has published what the preparation committed: its backlog is not timed."""
    while True:
        async with gw.engine.connect() as conn:
            backlog, _ = await outbox_backlog(conn)
        if backlog == 0:
            return
        await asyncio.sleep(0.05)


async def fill(amqp_url: str, queue: str, bodies: list[bytes], content_type: str) -> None:
    """Publish (confirmed) every message before the consumer starts, so consuming is what is timed."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.declare_queue(queue, durable=True, arguments=consumer_queue_arguments(5))
    for start in range(0, len(bodies), 500):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(
                        body,
                        headers={"partner": DEMO},
                        content_type=content_type,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=queue,
                )
                for body in bodies[start : start + 500]
            )
        )
    await connection.close()


async def straight_to_the_door(gw: Gateway, bodies: list[bytes], content_type: str, in_flight: int) -> None:
    """The peer without AMQP in: the same messages handed to the door by `in_flight` callers."""
    maker = gw.partners.get(DEMO)
    dialect = dialect_of(content_type, bodies[0])
    queue = iter(bodies)

    async def caller() -> None:
        for body in queue:
            got, _ = await gw.door.accept(dialect, maker, body, transport="amqp", content_type=content_type)
            assert got.status == "applied", got

    await asyncio.gather(*(caller() for _ in range(in_flight)))


async def through_the_gateway(
    gw: Gateway, amqp_url: str, bodies: list[bytes], content_type: str, via_queue: bool = True
) -> float:
    """Events per second until the relay has published every canonical event; the MES messages
    come through their queue (`via_queue`), or straight to the door."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    sink = await channel.declare_queue(
        f"bench.canonical.{content_type.split('/')[1]}", durable=True, arguments={"x-queue-type": "quorum"}
    )
    await sink.bind("cgt.events", "manufacturing.#")
    await sink.purge()
    if via_queue:
        await fill(amqp_url, QUEUE, bodies, content_type)
    began, cpu = time.perf_counter(), time.process_time()
    mes_queues = await mes.start_transport(gw)
    assert isinstance(mes_queues, InboundQueues)
    if not via_queue:
        await straight_to_the_door(gw, bodies, content_type, mes.prefetch)
    try:
        while True:
            declared = await channel.declare_queue(sink.name, passive=True)
            if (declared.declaration_result.message_count or 0) >= len(bodies):
                break
            assert mes_queues.dead_lettered == 0, "a bench message was refused"
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - began
        # how many cores this process kept busy: ~1 means its event loop (one thread holding the
        # GIL) is the limit, whatever the broker and the database could take
        print(f"  gateway process CPU: {(time.process_time() - cpu) / elapsed:.2f} cores", flush=True)
    finally:
        await mes_queues.stop()
    await sink.delete(if_unused=False, if_empty=False)
    await connection.close()
    return len(bodies) / elapsed


async def bare_consume(amqp_url: str, bodies: list[bytes], prefetch: int) -> float:
    """The same messages on a quorum queue, consumed and acked one by one, nothing else."""
    name = "bench.bare.consume"
    await fill(amqp_url, name, bodies, "application/cloudevents+json")
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    queue = await channel.declare_queue(name, passive=True)
    done = asyncio.Event()
    seen = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal seen
        await message.ack()
        seen += 1
        if seen == len(bodies):
            done.set()

    began = time.perf_counter()
    await queue.consume(on_message)
    await done.wait()
    elapsed = time.perf_counter() - began
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
    return len(bodies) / elapsed


async def measure(args: argparse.Namespace, relay: str, results: dict[str, list[float]]) -> None:
    """`--runs` runs of each dialect through one gateway, its relay embedded or in its own process."""
    with private_vhost() as amqp_url, tempfile.TemporaryDirectory() as tmp:
        settings = m.settings(Path(tmp), amqp_url, "canonical-json,mes-cloudevents,mes-b2mml")
        settings = settings.model_copy(update={"relay": relay})
        gw = bootstrap(settings)
        await gw.start()
        process = None
        if relay == "separate":
            process = await separate_relay(settings.database_url, amqp_url, Path(tmp) / "relay.log")
        try:
            offset = 0
            for run in range(args.runs):
                for dialect, build, content_type in (
                    ("cloudevents", cloud_events, "application/cloudevents+json"),
                    ("b2mml", b2mml_events, "application/xml"),
                ):
                    orders = await prepare(gw, args.n // PER_ORDER, offset)
                    offset += len(orders)
                    bodies = build(orders, args.n)
                    await drained(gw)
                    profiler = cProfile.Profile() if args.profile else None
                    if profiler:
                        profiler.enable()
                    rate = await through_the_gateway(gw, amqp_url, bodies, content_type)
                    if profiler:
                        profiler.disable()
                        print(f"--- profile: {dialect}, relay {relay}")
                        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
                    results[f"{dialect}, relay {relay}"].append(rate)
                    print(f"run {run + 1} {dialect}, relay {relay}: {rate:,.0f} events/s", flush=True)
                    if dialect == "cloudevents":  # the same, without the queue: the door's own share
                        orders = await prepare(gw, args.n // PER_ORDER, offset)
                        offset += len(orders)
                        await drained(gw)
                        rate = await through_the_gateway(
                            gw, amqp_url, build(orders, args.n), content_type, False
                        )
                        results[f"door only (cloudevents), relay {relay}"].append(rate)
                        print(f"run {run + 1} door only, relay {relay}: {rate:,.0f} events/s", flush=True)
                if relay == "embedded":  # the peers, once a run
                    bodies = cloud_events(orders, args.n)
                    results["bare consume + ack"].append(await bare_consume(amqp_url, bodies, args.prefetch))
                    published = (await bare_publish(amqp_url, args.n, 500))["msgs_per_s"]
                    results["bare confirmed publish"].append(published)
                    print(
                        f"run {run + 1} bare consume+ack {results['bare consume + ack'][-1]:,.0f}/s, "
                        f"confirmed publish {published:,.0f}/s",
                        flush=True,
                    )
        finally:
            if process is not None:
                process.terminate()
                await process.wait()
            await gw.stop()


async def main(args: argparse.Namespace) -> None:
    mes.prefetch = args.prefetch
    results: dict[str, list[float]] = {
        f"{d}, relay {r}": []
        for r in ("embedded", "separate")
        for d in ("cloudevents", "b2mml", "door only (cloudevents)")
    }
    results |= {"bare consume + ack": [], "bare confirmed publish": []}
    for relay in ("embedded", "separate") if args.relay == "both" else (args.relay,):
        await measure(args, relay, results)
    report(results)


def report(results: dict[str, list[float]]) -> None:
    med: dict[str, Any] = {k: statistics.median(v) for k, v in results.items() if v}
    consume, publish = med["bare consume + ack"], med["bare confirmed publish"]
    print(
        "\n| | median /s | runs | / bare consume+ack | / bare confirmed publish |\n|---|---:|---|---:|---:|"
    )
    for key, rates in results.items():
        if rates:
            runs = ", ".join(f"{v:,.0f}" for v in rates)
            print(
                f"| {key} | {med[key]:,.0f} | {runs} | {med[key] / consume:.2f} | {med[key] / publish:.2f} |"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prefetch", type=int, default=20)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--relay", choices=("embedded", "separate", "both"), default="both")
    parser.add_argument("--loop", choices=loops.CHOICES, default="uvloop")
    loops.run(main(parser.parse_args()))
