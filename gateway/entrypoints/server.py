"""The HTTP server's own limits, from settings: how long and how large a request's head may be,
how long an idle connection is kept, how many connections or requests may be in flight. `serve`
and the tests build the server here."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway import metrics
from gateway.settings import Settings

log = logging.getLogger("gateway.http.door")


class BoundedHead(HttpToolsProtocol):
    """uvicorn's httptools protocol (uvicorn[standard], the fast one), with the request's head
    bounded in size as h11 bounds it (h11_max_incomplete_event_size) and in time.

    httptools alone reads a head without end, even one endless header line. Two lower bounds of
    the head's size are kept, so neither refuses a head within the limit: the completed URL and
    headers, and the bytes of every read that began and ended inside the head; the parser holds
    at most the limit and one read. A connection whose head is not complete `head_timeout`
    seconds after it opened (or after its next request began) is closed: uvicorn by itself keeps
    a silent or trickling connection open for ever, one slot of the concurrency limit each.
    """

    head_timeout = 10.0  # seconds; server_config sets it from settings
    head_bytes = 0  # the URL and the completed headers
    head_reads = 0  # reads that were all head
    in_head = False
    head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self.head_bytes = self.head_reads = 0
        self.in_head = True
        if self.head_timer is None:  # the first request's clock started when the connection opened
            self._arm()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.in_head = False
        self._disarm()
        super().on_headers_complete()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def data_received(self, data: bytes) -> None:
        continuing = self.in_head
        super().data_received(data)
        if continuing and self.in_head and not self.transport.is_closing():
            self.head_reads += len(data)
            if self.head_reads > self._limit():
                self.send_400_response("The request head is too large.")

    def _count(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > self._limit():
            raise httptools.HttpParserError("the request head is too large")

    def _limit(self) -> int:
        return self.config.h11_max_incomplete_event_size or 16_384

    def _arm(self) -> None:
        self._disarm()
        self.head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_too_slow(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        metrics.HTTP_REFUSED.labels("unmatched", "head_timeout").inc()
        log.warning(
            "refused at the door: no complete request head from %s within %.0f s",
            self.client[0] if self.client else "-",
            self.head_timeout,
        )
        self.transport.close()


def server_config(app: ASGIApp, settings: Settings, *, host: str, port: int, **extra: Any) -> uvicorn.Config:
    protocol = type("BoundedHead", (BoundedHead,), {"head_timeout": settings.http_head_timeout_seconds})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=settings.http_keepalive_seconds,
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        limit_concurrency=settings.http_max_concurrency,
        # uvicorn's access line quotes the raw path and query, which may name a patient's
        # identifiers: never written (the Door logs the route template, CGT_HTTP_ACCESS_LOG)
        access_log=False,
        **extra,
    )
