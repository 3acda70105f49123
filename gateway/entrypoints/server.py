"""The HTTP server's own limits, from settings: keep-alive, the size of a request's head, and how
many connections or requests may be in flight. `serve` and the tests build the server here."""

from __future__ import annotations

from typing import Any

import uvicorn
from starlette.types import ASGIApp

from gateway.settings import Settings

try:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # uvicorn without its [standard] extras: h11 bounds the head itself
    HEAD_BOUNDED: type[Any] | str = "h11"
else:

    class BoundedHead(HttpToolsProtocol):
        """uvicorn's fast protocol, with the request line and headers bounded as h11 bounds them
        (h11_max_incomplete_event_size): httptools alone reads a head without end, even one
        endless header line. Two lower bounds of the head's size are kept, so neither refuses a
        head within the limit: the completed URL and headers, and the bytes of every read that
        began and ended inside the head. The parser holds at most the limit and one read."""

        head_bytes = 0  # the URL and the completed headers
        head_reads = 0  # reads that were all head
        in_head = False

        def on_message_begin(self) -> None:
            self.head_bytes = self.head_reads = 0
            self.in_head = True
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self.in_head = False
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

    HEAD_BOUNDED = BoundedHead


def server_config(app: ASGIApp, settings: Settings, *, host: str, port: int, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=HEAD_BOUNDED,
        timeout_keep_alive=settings.http_keepalive_seconds,
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        limit_concurrency=settings.http_max_concurrency,
        **extra,
    )
