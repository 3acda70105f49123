"""Benchmark of FHIR R4 Bundle intake end to end (validate, map, reconcile, commit, 201) on SQLite,
beside the ceiling with a slim pydantic model in place of the fhir.resources R4B validation, and
the core path alone (the same orders as canonical-json commands on /api/messages), all measured in
the same run, interleaved.

    .venv/bin/python bench/fhir_intake.py            # 400 Bundles a round, 3 rounds each way
    .venv/bin/python bench/fhir_intake.py --n 100 --rounds 1 --json

Each Bundle is the 5.6 KB order Bundle of tests/fixtures/fhir (a new patient and placer number
each), POSTed to /fhir/r4 through the ASGI app (in process, no sockets), one at a time (`--clients
1`, an EHR interface) and eight at a time. Needs the local RabbitMQ (a private vhost is created
and removed: the relay publishes behind the intake).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ConfigDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loops
from scratch import private_vhost

from adapters.fhir import validation
from adapters.fhir.adapter import adapter
from adapters.fhir.message import Interaction
from gateway.canonical.envelope import utcnow
from gateway.entrypoints.bootstrap import bootstrap
from gateway.entrypoints.http import create_app
from gateway.partners import load_partners
from gateway.registry import InboundContext
from gateway.settings import Settings

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "fhir" / "order-transaction.json"
KEY = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/fhir+json"}


class SlimEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fullUrl: str | None = None
    resource: dict[str, Any]
    request: dict[str, Any] | None = None


class SlimBundle(BaseModel):
    """What a hand-written model of the order Bundle would check: the envelope, not R4."""

    model_config = ConfigDict(extra="allow")
    resourceType: str
    type: str
    identifier: dict[str, Any] | None = None
    entry: list[SlimEntry]


def bundles(n: int, start: int) -> list[bytes]:
    text = FIXTURE.read_text()
    out = []
    for i in range(start, start + n):
        doc = text.replace("MRN-000001", f"MRN-{i:07d}").replace("PO-000001", f"PO-{i:07d}")
        out.append(doc.replace("BUNDLE-0001", f"B-{i}").encode())
    return out


@contextmanager
def slim_validation() -> Iterator[None]:
    original = validation.model

    def model(resource_type: str) -> type[BaseModel]:
        return SlimBundle if resource_type == "Bundle" else original(resource_type)

    validation.model = model  # type: ignore[assignment]
    try:
        yield
    finally:
        validation.model = original


def canonical_envelopes(bodies: list[bytes]) -> list[bytes]:
    """The same orders as the canonical-json dialect would carry them: the core path alone."""
    ctx = InboundContext(
        load_partners(Settings().partners_file, env="test").get("demo-hospital"),
        "bench",
        utcnow(),
        Interaction(accepted=("Bundle",)),
    )
    out = []
    for body in bodies:
        parsed = adapter.decode(body, ctx)
        commands = [c.model_dump(mode="json") for c in parsed.commands]
        out.append(orjson.dumps({"message_id": parsed.message_id, "commands": commands}))
    return out


async def intake_rate(
    amqp_url: str, bodies: list[bytes], clients: int, path: str = "/fhir/r4"
) -> dict[str, float]:
    """Bundles/s through the app on a fresh SQLite database; each request in its own task, as a
    server runs it."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            env="test",
            database_url=f"sqlite+aiosqlite:///{tmp}/gw.db",
            amqp_url=amqp_url,
            adapters="canonical-json,fhir-r4",
        )
        gateway = bootstrap(settings)
        await gateway.start()
        latencies: list[float] = []
        try:
            transport = httpx.ASGITransport(app=create_app(gateway))
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
                warm = await http.post("/fhir/r4", content=bundles(1, 9_000_000)[0], headers=KEY)
                assert warm.status_code == 201, warm.text
                queue = list(bodies)

                async def client() -> None:
                    while queue:
                        body = queue.pop()
                        started = time.perf_counter()
                        response = await asyncio.create_task(http.post(path, content=body, headers=KEY))
                        latencies.append(time.perf_counter() - started)
                        assert response.status_code == 201, response.text

                started = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(clients)))
                elapsed = time.perf_counter() - started
        finally:
            await gateway.stop()
    latencies.sort()
    return {
        "per_s": len(bodies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


def validation_ms(body: bytes, model: type[BaseModel], repeat: int = 300) -> float:
    document = orjson.loads(body)
    model.model_validate(document)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            model.model_validate(document)
        times.append((time.perf_counter() - started) / repeat * 1e3)
    return statistics.median(times)


async def main() -> None:
    args = loops.rounds_arguments(400)
    body = bundles(1, 1)[0]
    results: dict[str, Any] = {
        **loops.machine(args),
        "bundle_bytes": len(body),
        "r4b_validation_ms": round(validation_ms(body, validation.model("Bundle")), 3),
        "slim_validation_ms": round(validation_ms(body, SlimBundle), 3),
    }
    runs: dict[str, list[dict[str, float]]] = {}
    start = 1
    with private_vhost() as amqp_url:
        for _ in range(args.rounds):
            for clients in (1, 8):
                for kind in ("r4b", "slim", "canonical"):
                    bodies = bundles(args.n, start)
                    start += args.n
                    if kind == "slim":
                        with slim_validation():
                            rate = await intake_rate(amqp_url, bodies, clients)
                    elif kind == "canonical":
                        rate = await intake_rate(
                            amqp_url, canonical_envelopes(bodies), clients, "/api/messages"
                        )
                    else:
                        rate = await intake_rate(amqp_url, bodies, clients)
                    runs.setdefault(f"{kind}_clients{clients}", []).append(rate)
    for name, rates in runs.items():
        results[name] = {
            "per_s_median": round(statistics.median(r["per_s"] for r in rates), 1),
            "per_s_all": [round(r["per_s"], 1) for r in rates],
            "p50_ms_median": round(statistics.median(r["p50_ms"] for r in rates), 2),
            "p99_ms_median": round(statistics.median(r["p99_ms"] for r in rates), 2),
        }
    for clients in (1, 8):
        full, slim = results[f"r4b_clients{clients}"], results[f"slim_clients{clients}"]
        core = results[f"canonical_clients{clients}"]
        results[f"ratio_r4b_to_slim_clients{clients}"] = round(full["per_s_median"] / slim["per_s_median"], 3)
        results[f"ratio_r4b_to_canonical_clients{clients}"] = round(
            full["per_s_median"] / core["per_s_median"], 3
        )
    print(json.dumps(results, indent=None if args.json else 2))


if __name__ == "__main__":
    loops.run(main())
