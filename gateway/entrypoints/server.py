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
        (h11_max_incomplete_event_size): httptools alone reads headers without end."""

        head_bytes = 0

        def on_message_begin(self) -> None:
            self.head_bytes = 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def _count(self, size: int) -> None:
            self.head_bytes += size
            limit = self.config.h11_max_incomplete_event_size
            if limit is not None and self.head_bytes > limit:
                raise httptools.HttpParserError("the request head is too large")

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
