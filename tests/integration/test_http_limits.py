"""The HTTP door's limits against a real uvicorn server, configured as `serve` configures it, over
real sockets: bodies far over the limit are refused without being read, heads are bounded, idle
connections close, concurrency is capped, malformed credentials are 401."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from gateway.settings import Settings
from tests.support.served import served as serving

LIMIT = 65_536
HUGE = 256 * 1024 * 1024  # what a hostile sender offers
CHUNK = 65_536


@contextmanager
def served(tmp_path: Path, amqp_url: str, **limits: Any) -> Iterator[int]:
    """The whole gateway behind a real uvicorn server in a thread; yields its port."""
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        max_body_bytes=LIMIT,
        mllp_port=0,
        adapters="canonical-json,fhir-r4",
        **limits,
    )
    with serving(settings) as port:
        yield port


def head(path: str, headers: dict[str, str | bytes], method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: gateway"]
    lines += [k.encode() + b": " + (v if isinstance(v, bytes) else v.encode()) for k, v in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class Exchange:
    """One connection: what we managed to send before the server stopped reading, what it said."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.answer = bytearray()
        self.ended = threading.Event()  # the server answered and closed, or went silent
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            while data := self.sock.recv(65_536):
                self.answer += data
        except OSError:
            pass
        finally:
            self.ended.set()

    def send_chunked(self, total: int) -> tuple[int, bool]:
        """Chunks until `total` bytes or until the server ends the exchange; (sent, refused by
        the server before the end)."""
        piece = b"%x\r\n" % CHUNK + b"a" * CHUNK + b"\r\n"
        sent = 0
        try:
            while sent < total and not self.ended.is_set():
                self.sock.sendall(piece)
                sent += CHUNK
        except OSError:  # reset or broken pipe: the server closed the connection
            return sent, True
        return sent, sent < total

    def status_and_body(self) -> tuple[int, dict[str, str], bytes]:
        self.ended.wait(10)
        raw = bytes(self.answer)
        top, _, body = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = top.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        return int(status_line.split()[1]), headers, body

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the reader; the server may have closed first
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.reader.join(10)


def read_reported(caplog: pytest.LogCaptureFixture) -> int:
    """Bytes the server says it read of the refused request (its door log line)."""
    (record,) = [r for r in caplog.records if r.name == "gateway.http.door"]
    return int(record.args[6])  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "headers", "status", "media", "check"),
    [
        (
            "/fhir/r4/auth/token",
            {"Content-Type": "application/x-www-form-urlencoded"},
            413,
            "application/json",
            lambda b: b["error"] == "invalid_request",
        ),
        ("/api/messages", {"Content-Type": "application/json"}, 413, "application/problem+json", None),
        (
            "/fhir/r4",
            {"Content-Type": "application/fhir+json", "X-API-Key": "demo-hospital-key"},
            413,
            "application/fhir+json",
            lambda b: b["resourceType"] == "OperationOutcome" and b["issue"][0]["code"] == "too-long",
        ),
        (  # refused before its body is read: the body is never read at all
            "/fhir/r4",
            {"Content-Type": "application/fhir+json"},
            401,
            "application/fhir+json",
            lambda b: b["issue"][0]["code"] == "login",
        ),
    ],
)
def test_a_chunked_body_far_over_the_limit_is_refused_and_not_read_to_its_end(
    tmp_path: Path,
    amqp_url: str,
    caplog: pytest.LogCaptureFixture,
    path: str,
    headers: dict[str, str | bytes],
    status: int,
    media: str,
    check: Any,
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.http.door")
    with served(tmp_path, amqp_url) as port:
        exchange = Exchange(port)
        exchange.sock.sendall(head(path, {**headers, "Transfer-Encoding": "chunked"}))
        sent, refused = exchange.send_chunked(HUGE)
        answered, answer_headers, body = exchange.status_and_body()
        exchange.close()
    assert answered == status
    assert answer_headers["content-type"].startswith(media)
    assert answer_headers["connection"] == "close"
    if check is not None:
        assert check(orjson.loads(body))
    assert refused, "the server kept reading a body it had refused"
    # what the client could push into socket buffers before the close, a tiny part of 256 MiB
    assert sent < 32 * 1024 * 1024, sent
    # What the server itself read: the limit and the message that crossed it. The server hands the
    # app what arrived while the app was busy as one message, so on a loaded machine that message
    # can hold a few of the client's chunks (seen: 3); never more than its flow-control buffer.
    assert read_reported(caplog) <= LIMIT + 4 * CHUNK


def test_a_sender_that_leaves_mid_body_costs_no_traceback(
    tmp_path: Path, amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with served(tmp_path, amqp_url) as port:
        exchange = Exchange(port)
        exchange.sock.sendall(head("/api/messages", {"Transfer-Encoding": "chunked"}) + b"10\r\n{")
        time.sleep(0.3)  # the route waits for the rest of the body
        exchange.close()
        time.sleep(0.3)
        after = Exchange(port)
        after.sock.sendall(head("/metrics", {"Connection": "close"}, method="GET"))
        status, _, _ = after.status_and_body()
        after.close()
    assert status == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_declared_length_over_the_limit_is_refused_before_the_body(tmp_path: Path, amqp_url: str) -> None:
    with served(tmp_path, amqp_url) as port:
        exchange = Exchange(port)
        declared = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(HUGE)}
        exchange.sock.sendall(head("/fhir/r4/auth/token", declared))
        status, headers, _ = exchange.status_and_body()
        exchange.close()
    assert status == 413 and headers["connection"] == "close"


@pytest.mark.parametrize(
    "opening",
    [
        # many headers
        head("/health", {f"X-Pad-{i}": "p" * 1000 for i in range(64)}, method="GET"),
        # one header line without end
        b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Endless: ",
    ],
    ids=["many-headers", "endless-header"],
)
def test_a_request_head_over_the_limit_is_refused(tmp_path: Path, amqp_url: str, opening: bytes) -> None:
    with served(tmp_path, amqp_url, http_max_header_bytes=8192) as port:
        exchange = Exchange(port)
        sent = 0
        with contextlib.suppress(OSError):  # closed while we still sent: refused all the same
            exchange.sock.sendall(opening)
            while sent < HUGE and not exchange.ended.is_set():
                exchange.sock.sendall(b"p" * CHUNK)
                sent += CHUNK
        status, _, _ = exchange.status_and_body()
        exchange.close()
        # a head within the limit is served on the same server
        normal = Exchange(port)
        normal.sock.sendall(head("/metrics", {"X-Pad": "p" * 6000, "Connection": "close"}, method="GET"))
        ok, _, _ = normal.status_and_body()
        normal.close()
    assert status == 400 and ok == 200
    assert sent < 32 * 1024 * 1024


@pytest.mark.parametrize(
    "opening", [b"", b"GET /health HTTP/1.1\r\nHost: gateway\r\n"], ids=["silent", "trickling"]
)
def test_a_connection_without_a_complete_head_in_time_is_closed(
    tmp_path: Path, amqp_url: str, opening: bytes
) -> None:
    timeouts = {"route": "unmatched", "reason": "head_timeout"}
    before = REGISTRY.get_sample_value("cgt_http_refused_total", timeouts) or 0.0
    with served(tmp_path, amqp_url, http_head_timeout_seconds=1) as port:
        exchange = Exchange(port)
        started = time.monotonic()
        with contextlib.suppress(OSError):
            exchange.sock.sendall(opening)
            while not exchange.ended.wait(0.2):  # a header byte now and then, never the end
                if opening:
                    exchange.sock.sendall(b"X")
        waited = time.monotonic() - started
        closed_without_answer = exchange.answer == b""
        exchange.close()
    assert closed_without_answer and 0.5 < waited < 6
    assert REGISTRY.get_sample_value("cgt_http_refused_total", timeouts) == before + 1


def test_idle_keep_alive_connections_are_closed_after_the_configured_time(
    tmp_path: Path, amqp_url: str
) -> None:
    with served(tmp_path, amqp_url, http_keepalive_seconds=1) as port:
        exchange = Exchange(port)
        exchange.sock.sendall(head("/metrics", {}, method="GET"))
        started = time.monotonic()
        assert exchange.ended.wait(8), "the idle connection was kept open"
        waited = time.monotonic() - started
        status, _, _ = exchange.status_and_body()
        exchange.close()
    assert status == 200 and 0.5 < waited < 6


def test_connections_past_the_concurrency_limit_get_503(tmp_path: Path, amqp_url: str) -> None:
    with served(tmp_path, amqp_url, http_max_concurrency=2) as port:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        time.sleep(0.2)  # let the server register both
        third = Exchange(port)
        third.sock.sendall(head("/metrics", {"Connection": "close"}, method="GET"))
        refused, _, _ = third.status_and_body()
        third.close()
        for sock in idle:
            sock.close()
        time.sleep(0.2)
        again = Exchange(port)
        again.sock.sendall(head("/metrics", {"Connection": "close"}, method="GET"))
        served_again, _, _ = again.status_and_body()
        again.close()
    assert refused == 503 and served_again == 200


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/messages", {"X-API-Key": b"demo-hospital-k\xffy"}),
        (
            "/api/messages",
            {"X-CGT-Partner": "demo-courier", "X-CGT-Timestamp": "1", "X-CGT-Signature": b"\xe9"},
        ),
        ("/fhir/r4", {"X-API-Key": b"\xff\xfe", "Content-Type": "application/fhir+json"}),
    ],
)
def test_a_non_ascii_credential_is_401_over_real_http(
    tmp_path: Path, amqp_url: str, path: str, headers: dict[str, str | bytes]
) -> None:
    with served(tmp_path, amqp_url) as port:
        exchange = Exchange(port)
        exchange.sock.sendall(head(path, {**headers, "Content-Length": "2", "Connection": "close"}) + b"{}")
        status, answer_headers, body = exchange.status_and_body()
        exchange.close()
    assert status == 401
    assert "json" in answer_headers["content-type"]
    assert b"Traceback" not in body and b"Internal" not in body
