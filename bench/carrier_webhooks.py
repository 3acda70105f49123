"""Carrier status webhooks, one at a time over real HTTP to a real `cgt-gateway serve` process
(uvloop + httptools, SQLite in WAL with synchronous=FULL, the relay publishing to a private
RabbitMQ vhost behind the intake): UPS Track Alert events signed with Standard Webhooks, POSTed
to /couriers/{partner}/tracking, each read, mapped through the UPS code table, reconciled by its
tracking number, committed and answered 201. Target: >= 500/s.

Ceilings in the same run, on the same server and connection, interleaved round by round:

- **ignored**: a known status that is not the order's business (a label printed): signature,
  decode and code table, the replay row in a transaction of its own, answered 200;
- **refused**: a bad signature: HTTP, body, partner lookup and HMAC only, answered 401;
- **door alone**: the same events handed to the door of a gateway in the bench's own process (no
  HTTP, no signature, no replay row): the intake's commit one message at a time;
- **decode alone**: the adapter's decode of one event (JSON, code table, command), in µs;
- **durable commit alone**: one row inserted and committed at a time in the door's database (SQLite
  in WAL with synchronous=FULL as the gateway's intake, or PostgreSQL): the database's ceiling
  for anything that answers only what it has made durable, one at a time.

Each HTTP variant runs twice: through httpx (as every earlier run did) and through a raw HTTP/1.1
client on its own keep-alive connection, as a load generator speaks. One at a time on a 2-core
machine, the client's own time adds to every round trip: httpx's several hundred µs a request are
the client's, not the gateway's; the raw client's rate is the gateway's.

    .venv/bin/python bench/carrier_webhooks.py [--n 1000] [--rounds 3] [--relay embedded|process|separate]

For the applied webhooks through the raw client it also reads, from /proc, the CPU each process
spent a webhook: the server, a relay process, the broker (RabbitMQ's beam.smp) and the client.

`--relay process` runs the server with `CGT_RELAY=separate` and `cgt-gateway relay` in a process
of its own beside it, publishing as it goes (the layout docs/scale-out.md recommends at rate);
`--relay separate` runs no relay at all: the serving process's own cost.

`--wrk` adds a round of **wrk** (Debian's package `wrk`: `apt-get install wrk`) to each round:
one thread, one connection, one request at a time, pre-signed applied webhooks replayed from a
Lua table (a request wrk sends twice would be refused as a replay and counted as non-2xx): a
load generator in C, independent of the bench's own clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import loops
from scratch import private_vhost

from adapters.couriers.tracking.adapter import adapter as tracking
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.registry import InboundContext
from gateway.sdk import utcnow
from tests.integration.test_carrier_tracking_polling import booked
from tests.support.carriers import NEW_SECRET, booked_order, standard_signed, with_carriers

TRACKING = "1Z999AA10000000777"
RELAY = ["embedded"]  # --relay
DATABASE = ["sqlite"]  # --database
RELAYS: list[subprocess.Popen[bytes]] = []
CREATED: list[str] = []  # PostgreSQL databases made by the run, dropped at its end
# Each through httpx (as every earlier run measured) and through a raw HTTP/1.1 client.
VARIANTS = tuple(f"{v}{c}" for c in ("", " (raw client)") for v in ("applied", "ignored", "refused"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)


def database(workdir: Path) -> str:
    """A SQLite file in `workdir`, or with `--database postgresql` a fresh PostgreSQL database."""
    if DATABASE[0] == "sqlite":
        return with_carriers(workdir).database_url
    name = f"cgt_bench_{uuid.uuid4().hex[:10]}"
    psql(f'CREATE DATABASE "{name}"')
    CREATED.append(name)
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def start(workdir: Path, amqp_url: str) -> tuple[subprocess.Popen[bytes], int]:
    settings = with_carriers(workdir).model_copy(update={"database_url": database(workdir)})
    port = free_port()
    env = {
        **os.environ,
        "CGT_ENV": "test",
        "CGT_DATABASE_URL": settings.database_url,
        "CGT_AMQP_URL": amqp_url,
        "CGT_HTTP_PORT": str(port),
        "CGT_MLLP_PORT": str(free_port()),
        "CGT_ADAPTERS": settings.adapters or "",
        "CGT_PARTNERS_FILE": str(settings.partners_file),
        "CGT_PROFILE_DIRS": json.dumps({k: str(v) for k, v in settings.profile_dirs.items()}),
        "CGT_TRACKING_POLL_ENABLED": "false",
    }
    cli = Path(sys.executable).parent / "cgt-gateway"
    process = subprocess.Popen(
        [str(cli), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if RELAY[0] == "process":  # publishing beside the server, as `cgt-gateway relay` does
        RELAYS.append(
            subprocess.Popen(
                [str(cli), "relay"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("serve did not start")


def alert(n: int, *, code: tuple[str, str, str] = ("I", "DP", "005")) -> bytes:
    """A synthetic Track Alert event, the n-th of the shipment (its own time: its own id)."""
    at = datetime(2026, 11, 9, 8, 0, tzinfo=UTC) + timedelta(seconds=n)
    kind, short, described = code
    return orjson.dumps(
        {
            "trackingNumber": TRACKING,
            "localActivityDate": at.strftime("%Y%m%d"),
            "localActivityTime": at.strftime("%H%M%S"),
            "activityLocation": {"city": "Springfield", "stateProvince": "NC", "country": "US"},
            "activityStatus": {
                "type": kind,
                "code": short,
                "description": "On the Way",
                "descriptionCode": described,
            },
            "scheduledDeliveryDate": "20261110",
            "gmtActivityDate": at.strftime("%Y%m%d"),
            "gmtActivityTime": at.strftime("%H%M%S"),
        }
    )


class RawClient:
    """HTTP/1.1 on one keep-alive connection, as a load generator (wrk, h2load) speaks it: the
    request's bytes written, the status line, headers and Content-Length body read back. Its own
    cost per request is a few µs where httpx's is several hundred: one at a time on a 2-core
    machine, the client's time adds to every round trip."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawClient:
        await self.connect()
        return self

    async def connect(self) -> None:
        """A new connection (the server closes one idle past its keep-alive, 5 s)."""
        if self.writer is not None:
            self.writer.close()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def __aexit__(self, *exc: object) -> None:
        assert self.writer is not None
        self.writer.close()

    async def post(self, url: str, content: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            f"POST {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(content)}\r\n{head}\r\n".encode()
            + content
        )
        lines = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(int(x.split(b":")[1]) for x in lines[1:] if x.lower().startswith(b"content-length:"))
        return status, await self.reader.readexactly(length)


WRK: list[bool] = [False]  # --wrk
LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)


def lua_long(text: str) -> str:
    return f"[==[{text}]==]"


def wrk_round(port: int, workdir: Path, first: int, n: int) -> dict[str, Any]:
    """Applied webhooks sent by wrk one at a time for n/1,000 seconds (2 at least), from enough
    new ones signed just before for 2,500 a second: every answer 2xx, or the round fails."""
    seconds = max(2, round(n / 1000))
    rows = []
    for i in range(2500 * seconds):
        body = alert(first + i)
        headers = standard_signed(body, f"msg_wrk_{first + i}")
        parts = (
            headers["webhook-id"],
            headers["webhook-timestamp"],
            headers["webhook-signature"],
            body.decode(),
        )
        rows.append("{" + ", ".join(lua_long(x) for x in parts) + "}")
    script = workdir / "webhooks.lua"
    script.write_text(
        "local data = {\n" + ",\n".join(rows) + "\n}\n"
        "local reqs, i = {}, 0\n"
        "init = function(args)\n"
        "  for k, d in ipairs(data) do\n"
        '    reqs[k] = wrk.format("POST", "/couriers/test-ups/tracking", {["webhook-id"] = d[1],'
        ' ["webhook-timestamp"] = d[2], ["webhook-signature"] = d[3],'
        ' ["Content-Type"] = "application/json"}, d[4])\n'
        "  end\n"
        "end\n"
        "request = function()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n"
    )
    out = subprocess.run(
        ["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Non-2xx" not in out, out  # a refusal: wrk ran out of new webhooks, or one was not applied
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latency = {q: float(v) * scale[unit] for q, v, unit in LATENCY.findall(out)}
    return {"variant": "applied (wrk)", "per_s": rate, "p50_ms": latency["50"], "p99_ms": latency["99"]}


TICKS = os.sysconf("SC_CLK_TCK")
PROCESSES: dict[str, int] = {}  # who spends CPU on a webhook: the server, a relay, the broker, the client


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def broker_pid() -> int | None:
    found = subprocess.run(["pgrep", "-o", "beam.smp"], capture_output=True, text=True, check=False)
    return int(found.stdout.split()[0]) if found.stdout.strip() else None


async def run_variant(
    http: httpx.AsyncClient | RawClient, variant: str, first: int, n: int
) -> dict[str, Any]:
    url = "/couriers/test-ups/tracking"
    code = ("M", "MP", "003") if variant.startswith("ignored") else ("I", "DP", "005")
    secret = (
        "whsec_YmVuY2gtbm90LXRoZS1zZWNyZXQtb2YtdGhlLWNvdXJpZXI="
        if variant.startswith("refused")
        else NEW_SECRET
    )
    expected = {"applied": 201, "ignored": 200, "refused": 401}[variant.split()[0]]
    bodies = [alert(first + i, code=code) for i in range(n)]
    if isinstance(http, RawClient):
        await http.connect()
    latencies = []
    before = {who: cpu_seconds(pid) for who, pid in PROCESSES.items()}
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        headers = standard_signed(body, f"msg_{variant.split()[0]}_{first + i}", secret=secret)
        t0 = time.perf_counter()
        if isinstance(http, RawClient):
            status, text = await http.post(url, body, headers)
        else:
            answer = await http.post(url, content=body, headers=headers)
            status, text = answer.status_code, answer.content
        latencies.append(time.perf_counter() - t0)
        assert status == expected, (variant, status, text)
    elapsed = time.perf_counter() - started
    if variant.startswith("applied"):  # the relay's publishing trails the answers by a little
        await asyncio.sleep(0.3)
    cpu = {who: (cpu_seconds(pid) - before[who]) / n * 1e6 for who, pid in PROCESSES.items()}
    latencies.sort()
    return {
        "variant": variant,
        "per_s": n / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "cpu_us": cpu,
    }


async def door_alone(gw: Gateway, first: int, n: int) -> dict[str, Any]:
    adapter, partner = gw.adapters["carrier-tracking"], gw.partners.get("test-ups")
    bodies = [alert(first + i) for i in range(n)]
    latencies = []
    started = time.perf_counter()
    for body in bodies:
        t0 = time.perf_counter()
        outcome, _ = await gw.door.accept(adapter, partner, body, transport="http")
        latencies.append(time.perf_counter() - t0)
        assert outcome.status == "applied", outcome
    elapsed = time.perf_counter() - started
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    return {"variant": "door alone", "per_s": n / elapsed, "p50_ms": p50 * 1000, "p99_ms": p99 * 1000}


def commit_alone(url: str, n: int) -> dict[str, Any]:
    """One row inserted and committed at a time, durably, in the bench's database: a SQLite file
    in WAL with synchronous=FULL, or a table in the PostgreSQL database (synchronous_commit on)."""
    if url.startswith("sqlite"):
        db: Any = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS commit_alone (id INTEGER PRIMARY KEY, body BLOB)")
        begin, insert = "BEGIN IMMEDIATE", "INSERT INTO commit_alone (body) VALUES (?)"
    else:
        import psycopg

        db = psycopg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), autocommit=True)
        db.execute("CREATE TABLE IF NOT EXISTS commit_alone (id BIGSERIAL PRIMARY KEY, body BYTEA)")
        begin, insert = "BEGIN", "INSERT INTO commit_alone (body) VALUES (%s)"
    body, latencies = alert(1), []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        db.execute(begin)
        db.execute(insert, (body,))
        db.execute("COMMIT")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    db.close()
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    return {
        "variant": "durable commit alone",
        "per_s": n / elapsed,
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
    }


def decode_us(workdir: Path) -> float:
    settings = with_carriers(workdir)
    from gateway.partners import load_partners

    partners = load_partners(settings.partners_file, env="test")
    tracking.configure(settings, partners)
    ctx = InboundContext(partners.get("test-ups"), "http", utcnow())
    body = alert(1)
    best = min(timeit.repeat(lambda: tracking.decode(body, ctx), number=2000, repeat=5))
    return best / 2000 * 1e6


async def main(n: int, rounds: int) -> None:
    calibration = min(timeit.repeat("sum(range(1000))", number=10_000, repeat=5)) / 10_000 * 1e6
    with private_vhost() as amqp_url, tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "decode").mkdir()
        (Path(tmp) / "door").mkdir()
        decoding = decode_us(Path(tmp) / "decode")
        process, port = start(Path(tmp), amqp_url)
        PROCESSES.update(server=process.pid, client=os.getpid())
        PROCESSES.update({f"relay {i + 1}": r.pid for i, r in enumerate(RELAYS)})
        if (broker := broker_pid()) is not None:
            PROCESSES["broker"] = broker
        os.environ["CGT_TRACKING_POLL_ENABLED"] = "false"
        door = Path(tmp) / "door"
        door_url = database(door)
        local = bootstrap(
            with_carriers(door).model_copy(update={"amqp_url": amqp_url, "database_url": door_url})
        )
        await local.start()
        try:
            await booked(local, "test-ups", TRACKING)
            http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
            async with http, RawClient(port) as raw:
                await booked_order(http, "test-ups", TRACKING)
                await run_variant(http, "applied", 10_000_000, 100)  # warm-up
                await run_variant(raw, "applied", 11_000_000, 100)
                await door_alone(local, 10_000_000, 100)
                results: list[dict[str, Any]] = []
                for r in range(rounds):
                    for variant in VARIANTS:
                        first = r * n + VARIANTS.index(variant) * 1_000_000
                        client = raw if variant.endswith("(raw client)") else http
                        results.append(await run_variant(client, variant, first, n))
                    results.append(await door_alone(local, 9_000_000 + r * n, n))
                    results.append(commit_alone(door_url, n))
                    if WRK[0]:
                        results.append(wrk_round(port, Path(tmp), 20_000_000 + r * 1_000_000, n))
        finally:
            await local.stop()
            for running in (process, *RELAYS):
                running.terminate()
                running.wait(30)
            for name in CREATED:
                psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, sum(range(1000)) {calibration:.1f} µs"
    )
    print(f"{n} webhooks a round, {rounds} rounds, one at a time on one keep-alive connection")
    print(f"{DATABASE[0]}, relay {RELAY[0]}, load average before: {os.getloadavg()[0]:.1f}\n")
    print("| variant | webhooks/s (median) | rounds | p50 | p99 |")
    print("|---|---:|---|---:|---:|")
    applied = 0.0
    variants = (*VARIANTS, *(("applied (wrk)",) if WRK[0] else ()), "door alone", "durable commit alone")
    for variant in variants:
        mine = [x for x in results if x["variant"] == variant]
        rate = statistics.median(x["per_s"] for x in mine)
        applied = applied or rate
        spread = ", ".join(f"{x['per_s']:.0f}" for x in mine)
        p50 = statistics.median(x["p50_ms"] for x in mine)
        p99 = statistics.median(x["p99_ms"] for x in mine)
        print(
            f"| {variant} | {rate:.0f} ({rate / applied:.2f}x applied) | {spread} | {p50:.2f} ms | {p99:.2f} ms |"
        )
    print(f"\ndecode alone (JSON, UPS code table, command): {decoding:.0f} µs an event")
    print("\nCPU an applied webhook (raw client), median of the rounds, µs by process:")
    mine = [x for x in results if x["variant"] == "applied (raw client)"]
    for who in PROCESSES:
        print(f"- {who}: {statistics.median(x['cpu_us'][who] for x in mine):.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loop", choices=loops.CHOICES, default="uvloop", help="the client's event loop")
    parser.add_argument("--relay", choices=("embedded", "process", "separate"), default="embedded")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--wrk", action="store_true", help="a round of wrk too (apt-get install wrk)")
    options = parser.parse_args()
    if options.wrk and shutil.which("wrk") is None:
        parser.error("--wrk needs wrk on the PATH: apt-get install wrk")
    WRK[0] = options.wrk
    os.environ["CGT_RELAY"] = "embedded" if options.relay == "embedded" else "separate"
    RELAY[0] = options.relay
    DATABASE[0] = options.database
    loops.run(main(options.n, options.rounds))
