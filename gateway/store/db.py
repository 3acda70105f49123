"""Database engines: SQLite in WAL mode by default, PostgreSQL by URL; one place knows the difference.

Each database gets two engines on one URL. The async engine (aiosqlite / asyncpg) serves reads,
the relay and consumers. The intake's write transaction runs on a synchronous twin (sqlite3 /
psycopg) in a worker thread: one thread hop a message instead of one a statement, which measured
~5x faster on this machine (bench/results/core_path.md).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.store.prepared import cannot_write, driver_errors

T = TypeVar("T")
_SYNC_DRIVERS = {"sqlite": "sqlite+pysqlite", "postgresql": "postgresql+psycopg"}


def is_sqlite(engine: AsyncEngine | Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling off: SQLAlchemy's "begin" event issues BEGIN. On the
    # writer it is BEGIN IMMEDIATE, so two transactions never read the same audit chain head and
    # race to extend it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: an ACK promises the message survives a power cut, not only a process crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _begin_immediate(conn: Any) -> None:
    with driver_errors(conn, "BEGIN IMMEDIATE"):  # a busy database is SQLAlchemy's OperationalError
        conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # below SQLAlchemy: once a message


def _begin_deferred(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


def _prepare_sqlite(url: URL, sync_engine: Engine, *, writer: bool) -> None:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    event.listen(sync_engine, "connect", _sqlite_pragmas)
    # The writer takes the write lock at BEGIN. Everyone else begins deferred: reads never wait
    # for a writer (WAL), and their few writes take the lock at their first write statement.
    event.listen(sync_engine, "begin", _begin_immediate if writer else _begin_deferred)


def _discard_unwritable(context: ExceptionContext) -> None:
    # As a lost connection is: a read-only or failing connection is closed and the next
    # transaction opens a new one, which sees the file as it is now (statements run through
    # `Prepared` do the same in `driver_errors`).
    if context.original_exception is not None and cannot_write(context.original_exception):
        context.is_disconnect = True


# A write that changes nothing but is refused by a connection that cannot write (SQLite checks at
# the first write statement, PostgreSQL refuses it in a read-only session), and matches no row, so
# it waits for no lock.
_WRITE_PROBE = "UPDATE audit_head SET seq = seq WHERE 1 = 0"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    kwargs.setdefault("json_serializer", _json)
    kwargs.setdefault("json_deserializer", orjson.loads)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(url, **kwargs)
        _prepare_sqlite(parsed, engine.sync_engine, writer=False)
    else:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_async_engine(url, **kwargs)
    event.listen(engine.sync_engine, "handle_error", _discard_unwritable)  # its few writes too
    return engine


class Writer:
    """The synchronous twin of an async engine and the threads its transactions run on."""

    def __init__(self, engine: AsyncEngine) -> None:
        url = engine.url.set(drivername=_SYNC_DRIVERS[engine.url.get_backend_name()])
        sqlite = self.sqlite = url.get_backend_name() == "sqlite"
        # No pre-ping: it would cost a round trip a message. A connection that went stale fails
        # its transaction with a DBAPIError, which the sender sees as transient and retries.
        options: dict[str, Any] = {"json_serializer": _json, "json_deserializer": orjson.loads}
        if not sqlite:
            options.update(pool_size=10, pool_recycle=300)
        self.engine = create_sync_engine(url, **options)
        if sqlite:
            _prepare_sqlite(url, self.engine, writer=True)
        event.listen(self.engine, "handle_error", _discard_unwritable)
        # SQLite takes one writer at a time; more threads would only queue in its busy handler,
        # which sleeps in coarse steps. PostgreSQL writers run side by side.
        self.concurrency = 1 if sqlite else 10
        self._threads = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="cgt-writer")
        self._probing: asyncio.Future[None] | None = None

    @contextmanager
    def pipelined(self, conn: Connection) -> Iterator[None]:
        """On PostgreSQL, send the writes of a transaction without waiting for each answer
        (psycopg's pipeline mode): a read waits for everything sent before it, and leaving the
        block waits for the rest. A write's error then surfaces at the next read or at the end,
        still inside the transaction. SQLite runs in-process: nothing to wait for."""
        if self.sqlite:
            yield
            return
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with driver_errors(conn), raw.pipeline():
            yield

    @contextmanager
    def relaxed(self) -> Iterator[Connection]:
        """A transaction whose commit need not reach the disk before it returns, for bookkeeping
        that is safe to lose: the relay's leases and sent marks (a lost mark only publishes an
        event again, and consumers de-duplicate). The next durable commit flushes it anyway."""
        with self.engine.connect() as conn:
            if not self.sqlite:
                with conn.begin():
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                    yield conn
                return
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.begin():
                    yield conn
            finally:
                raw.execute("PRAGMA synchronous=FULL")

    async def run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, work)

    def _probe(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(_WRITE_PROBE)

    async def unwritable(self, within: float = 5.0) -> str | None:
        """Why the writer cannot write now (a PHI-free reason), or None when it can. Runs a write
        probe in the writer's own threads, on its own connections: it sees what a message would."""
        probing = self._probing
        if probing is None or probing.done() or probing.get_loop() is not asyncio.get_running_loop():
            probing = self._probing = asyncio.ensure_future(self.run(self._probe))
            # Retrieved here: a probe that fails after its caller stopped waiting is not an error.
            probing.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            async with asyncio.timeout(within):  # a writer stuck behind a lock is not writable
                # One probe at a time: callers polling a stuck writer share it, never queue more.
                await asyncio.shield(probing)
        except TimeoutError:
            return f"no write completed within {within:g} s"
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlite_errorname", None) or getattr(exc.orig, "sqlstate", None)
            return f"write refused ({code or type(exc.orig).__name__})"
        return None

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        self.engine.dispose()


# Keyed by the engine object itself, weakly: an engine that is collected takes its entry along,
# and a later engine can never be handed an earlier one's writer.
_WRITERS: weakref.WeakKeyDictionary[AsyncEngine, Writer] = weakref.WeakKeyDictionary()


def writer_for(engine: AsyncEngine) -> Writer:
    """The one Writer of `engine`, made on first use and closed by `dispose`."""
    writer = _WRITERS.get(engine)
    if writer is None:
        writer = _WRITERS[engine] = Writer(engine)
    return writer


async def dispose(engine: AsyncEngine) -> None:
    """Close an engine and its writer twin."""
    twin = _WRITERS.pop(engine, None)
    if twin is not None:
        await asyncio.get_running_loop().run_in_executor(None, twin.close)
    await engine.dispose()
