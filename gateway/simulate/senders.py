"""Sending a wire message as a partner would, and reading what the gateway answered: MLLP
connections per site (one message at a time on each, as interface engines do), HTTP clients, and
a manufacturer's AMQP channel (each message's outcome read on RabbitMQ's direct reply-to). A
transient failure (5xx, a dropped connection, no answer in time) is sent again, as a partner's
engine would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import aio_pika
import httpx
import orjson

from gateway.simulate.amqp import Amqp
from gateway.simulate.model import Boundary, Step, Transient, Wire

START, END = b"\x0b", b"\x1c\x0d"
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Answer:
    step: Step
    got: str  # applied | quarantined | refused | ignored | replayed | accepted (HL7 AA) | lost
    latency_s: float
    detail: str = ""
    inbound_id: str | None = None
    attempts: int = 1


def read_ack(frame: bytes) -> tuple[str, str]:
    """(what it says, detail) of an HL7 ACK: AA without ERR is `accepted` (applied or ignored:
    HL7 does not tell them apart); AA with an ERR of severity W is `quarantined` (held)."""
    segments = {s.split("|", 1)[0]: s.split("|") for s in frame.decode("utf-8", "replace").split("\r") if s}
    msa = segments.get("MSA", [])
    code = msa[1] if len(msa) > 1 else "?"
    err = segments.get("ERR")
    if code in ("AA", "CA"):
        if err is not None and len(err) > 4 and err[4] == "W":
            return "quarantined", "held"
        return "accepted", ""
    return "refused", f"{code} {'|'.join(err[1:4]) if err else ''}".strip()


class Mllp:
    """A few connections to one site's listeners (one per replica, in turn); each carries one
    message at a time. A connection that fails is opened again on the next replica."""

    def __init__(self, addresses: list[tuple[str, int]], connections: int) -> None:
        self.addresses = addresses
        self.idle: asyncio.Queue[tuple[int, Connection | None]] = asyncio.Queue()
        for slot in range(connections):
            self.idle.put_nowait((slot, None))

    async def exchange(self, payload: bytes, limit: float) -> bytes:
        slot, conn = await self.idle.get()
        try:
            if conn is None:
                host, port = self.addresses[slot % len(self.addresses)]
                conn = await asyncio.wait_for(asyncio.open_connection(host, port), limit)
            reader, writer = conn
            writer.write(START + payload + END)
            await writer.drain()
            frame = await asyncio.wait_for(reader.readuntil(END), limit)
            self.idle.put_nowait((slot, conn))
            return frame[1:-2]
        except BaseException:
            if conn is not None:
                conn[1].close()
            self.idle.put_nowait((slot + 1, None))  # the next replica
            raise

    async def close(self) -> None:
        while not self.idle.empty():
            _, conn = self.idle.get_nowait()
            if conn is not None:
                conn[1].close()


class Senders:
    def __init__(
        self,
        base_urls: list[str],
        mllp: dict[str, list[tuple[str, int]]],
        *,
        connections: int = 4,
        timeout: float = 30.0,
        attempts: int = 20,
        amqp_url: str | None = None,
    ) -> None:
        # 64 connections a gateway, in 8 clients of 8: httpcore's pool scans its connections for
        # each one on every request (quadratic), which at 64 in one pool cost the simulator more
        # CPU than the gateway spent answering. Turn by turn the clients alternate the replicas.
        limits = httpx.Limits(max_connections=8)
        self.http = [
            httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits)
            for _ in range(8)
            for url in base_urls
        ]
        self.turn = 0
        self.mllp = {site: Mllp(addresses, connections) for site, addresses in mllp.items()}
        self.timeout, self.attempts = timeout, attempts
        self.resends = 0
        self.amqp = Amqp(amqp_url) if amqp_url else None

    async def send(self, make: Callable[[], Wire]) -> Answer:
        """Send the message `make` builds; a transient failure sends it again, built again (signed
        anew, as a webhook sender's retry is a new attempt)."""
        began = time.perf_counter()
        last = ""
        wire = make()
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                wire = make()
            try:
                if wire.queue is not None:
                    got, detail, inbound = await self._amqp(wire)
                elif wire.path is None:
                    got, detail, inbound = await self._mllp(wire)
                else:
                    got, detail, inbound = await self._http(wire)
                return Answer(wire.step, got, time.perf_counter() - began, detail, inbound, attempt)
            except (
                TimeoutError,
                OSError,
                asyncio.IncompleteReadError,
                httpx.TransportError,
                aio_pika.exceptions.AMQPError,
                Transient,
            ) as exc:
                last = type(exc).__name__ + (f": {exc}" if isinstance(exc, Transient) else "")
                self.resends += 1
                await asyncio.sleep(1.0 if "same second" in last else min(0.05 * 2**attempt, 2.0))
        return Answer(
            wire.step, "lost", time.perf_counter() - began, f"gave up: {last}", attempts=self.attempts
        )

    async def _mllp(self, wire: Wire) -> tuple[str, str, str | None]:
        site = self.mllp[wire.step.sender]
        got, detail = read_ack(await site.exchange(wire.body, self.timeout))
        return got, detail, None

    async def _amqp(self, wire: Wire) -> tuple[str, str, str | None]:
        assert wire.queue is not None
        if self.amqp is None:
            raise RuntimeError("an AMQP step, and no broker to send it to")
        raw, repeat = await self.amqp.ask(wire, self.timeout)
        body = _json(raw)
        if repeat:
            found = body.get("inbound_id")
            return "replayed", "", found if isinstance(found, str) else None
        return _outcome(422 if body.get("outcome") == "rejected" else 200, body)

    async def _http(self, wire: Wire) -> tuple[str, str, str | None]:
        assert wire.path is not None
        self.turn += 1  # spread requests over the replicas; a failed one is sent again to the next
        client = self.http[self.turn % len(self.http)]
        response = await client.post(wire.path, content=wire.body, headers=list(wire.headers))
        if response.status_code >= 500 or response.status_code == 429:
            raise Transient(str(response.status_code))
        body = _json(response.content)
        said = f"{body.get('title', '')} {body.get('detail', '')}"
        if response.status_code == 401 and "received before" in said:
            # Standard Webhooks takes a signed attempt (id + timestamp, in seconds) once: a retry
            # signed in the same second as an earlier attempt is refused; the sender retries later.
            raise Transient("401 replay of an attempt of the same second")
        if response.headers.get("Idempotent-Replayed") == "true":
            found = body.get("inbound_id")
            return "replayed", "", found if isinstance(found, str) else None
        if wire.path.endswith("/epcis/capture") and response.status_code == 202:
            return _capture_job(body), "", None
        if wire.path.startswith("/fhir/"):
            return _fhir_outcome(response.status_code, body)
        return _outcome(response.status_code, body)

    async def close(self) -> None:
        for client in self.http:
            await client.aclose()
        for site in self.mllp.values():
            await site.close()
        if self.amqp is not None:
            await self.amqp.close()


def _outcome(status: int, body: dict[str, object]) -> tuple[str, str, str | None]:
    """What an answer says: the outcome itself, or a problem that carries it in `outcome`
    (`status`: the HTTP one)."""
    found = body.get("inbound_id")
    inbound = found if isinstance(found, str) else None
    if status >= 400:
        return (
            "refused",
            f"{status} {body.get('title') or body.get('error') or ''}: {body.get('detail') or ''}",
            inbound,
        )
    outcome = body.get("outcome", body.get("status"))
    got = outcome if isinstance(outcome, str) and outcome in ("quarantined", "ignored") else "applied"
    return got, str(body.get("title") or "") if got == "quarantined" else "", inbound


def _fhir_outcome(status: int, body: dict[str, object]) -> tuple[str, str, str | None]:
    """What a FHIR answer says: an error is an OperationOutcome with a 4xx; held for review is a
    202 with a warning; acknowledged and ignored is a 200 whose informational issue carries the
    reason's code (diagnostics); anything else was applied."""
    found = body.get("issue") if body.get("resourceType") == "OperationOutcome" else None
    first = found[0] if isinstance(found, list) and found and isinstance(found[0], dict) else {}
    details = first.get("details")
    text = str(details.get("text", "")) if isinstance(details, dict) else ""
    if status >= 400:
        return "refused", f"{status} {first.get('code', '')}: {text}", None
    if status == 202:
        return "quarantined", text, None
    if first.get("severity") == "information" and first.get("diagnostics"):
        return "ignored", text, None
    return "applied", "", None


def _json(raw: bytes) -> dict[str, object]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def boundary_of(answer: Answer) -> Boundary:
    return answer.step.boundary


def _capture_job(job: dict[str, object]) -> str:
    """An EPCIS capture job: applied, held for review, refused; no job at all: not ours."""
    if not job:
        return "ignored"
    found = job.get("errors")
    errors = found if isinstance(found, list) else []
    if job.get("success") is True:
        return "applied"
    if any(isinstance(e, dict) and e.get("outcome") == "quarantined" for e in errors):
        return "quarantined"
    return "refused"
