"""The whole gateway behind a real uvicorn server in a thread, configured as `serve` configures it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import uvicorn

from gateway.entrypoints.http import create_app
from gateway.entrypoints.server import server_config
from gateway.settings import Settings


@contextmanager
def served(settings: Settings) -> Iterator[int]:
    """Start the gateway of `settings` on a free loopback port; yields the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    app = create_app(settings=settings)
    config = server_config(app, settings, host="127.0.0.1", port=port, log_config=None, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


def on_sqlite(directory: Path, amqp_url: str, adapters: str, partners_file: Path) -> Settings:
    """A test gateway's settings: SQLite in `directory`, the broker, no MLLP port."""
    return Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{directory}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters=adapters,
        partners_file=partners_file,
    )


@asynccontextmanager
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the gateway of `settings`, served for as long as the client lives."""
    with served(settings) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
