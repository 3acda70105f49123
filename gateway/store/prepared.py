"""Statements compiled once per dialect and run straight on the driver's cursor.

SQLAlchemy's execution layer costs ~60-80 µs a statement on this machine (events, execution
context, result setup) where SQLite itself takes ~10 µs: on the intake's transaction, a dozen
statements a message, that was most of the time. A `Prepared` statement keeps what SQLAlchemy is
good at, the SQL for each dialect and the type conversions (UTC datetimes, JSON with the engine's
serializer), and skips the per-execution work. It runs inside the caller's SQLAlchemy transaction,
on the same connection; driver errors come out as SQLAlchemy's own (IntegrityError, ...), so
callers handle one family of exceptions.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import CompoundSelect, Delete, Insert, Select, Update

Statement = Select[Any] | CompoundSelect[Any] | Insert | Update | Delete
Processor = Callable[[Any], Any]


class _Compiled:
    """One statement's SQL and conversions for one dialect."""

    def __init__(self, statement: Statement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.order: Sequence[str] | None = compiled.positiontup  # None for named paramstyles
        processors = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for bind, name in compiled.bind_names.items()
        }
        # In the driver's order for positional paramstyles (SQLite's "?"), any order for named.
        self.plan = [(name, processors[name]) for name in (self.order or processors)]
        # Values written into the statement itself (`column == 1`), under their generated names.
        self.literals = {name: bind.value for bind, name in compiled.bind_names.items() if not bind.required}
        columns = statement.selected_columns if isinstance(statement, Select | CompoundSelect) else ()
        self.results: list[Processor | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self.convert_rows = any(self.results)

    def parameters(self, values: Mapping[str, Any]) -> Any:
        if self.literals:
            values = {**self.literals, **values}
        if self.order is not None:
            return tuple(p(values[name]) if p else values[name] for name, p in self.plan)
        return {name: p(values[name]) if p else values[name] for name, p in self.plan}

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        if not self.convert_rows:
            return tuple(raw)
        return tuple(p(v) if p else v for p, v in zip(self.results, raw, strict=True))


class Prepared:
    """A statement built once at import, compiled on first use for each dialect it meets."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self._by_dialect: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect)
        if compiled is None:
            compiled = self._by_dialect[dialect] = _Compiled(self.statement, dialect)
        return compiled

    def rows(self, conn: Connection, values: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query; its rows, converted to Python values."""
        return self.fetch(conn, self.send(conn, values))

    def send(self, conn: Connection, values: Mapping[str, Any] | None = None) -> Any:
        """Start a query and return its cursor, for `fetch` later: in a PostgreSQL pipeline,
        queries sent one after another travel, and come back, in one round trip."""
        compiled = self._for(conn.dialect)
        with driver_errors(conn, compiled.sql):
            cursor = _cursor(conn)
            cursor.execute(compiled.sql, compiled.parameters(values or {}))
            return cursor

    def fetch(self, conn: Connection, cursor: Any) -> list[tuple[Any, ...]]:
        """The rows of a query started by `send`, converted to Python values."""
        compiled = self._for(conn.dialect)
        with driver_errors(conn, compiled.sql):
            try:
                return [compiled.row(raw) for raw in cursor.fetchall()]
            finally:
                cursor.close()

    def first(self, conn: Connection, values: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        found = self.rows(conn, values)
        return found[0] if found else None

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """Run a write; its cursor, whose `rowcount` tells how many rows it touched once the
        statement has run (in a PostgreSQL pipeline: after the next read or sync)."""
        compiled = self._for(conn.dialect)
        with driver_errors(conn, compiled.sql):
            cursor = _cursor(conn)
            cursor.execute(compiled.sql, compiled.parameters(values))
            return cursor

    def execute_many(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> Any:
        """Run a write once for each of `rows` (psycopg pipelines them: one round trip); its
        cursor (`rowcount`: the rows touched in all), or None when there were no rows."""
        compiled = self._for(conn.dialect)
        parameters = [compiled.parameters(row) for row in rows]
        if not parameters:
            return None
        with driver_errors(conn, compiled.sql):
            cursor = _cursor(conn)
            cursor.executemany(compiled.sql, parameters)
            return cursor


def _cursor(conn: Connection) -> Any:
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    return dbapi_connection.cursor()


# SQLite's primary result codes (the low byte of an extended one) and PostgreSQL's SQLSTATE for a
# connection that cannot write, whatever it is asked: SQLITE_READONLY, SQLITE_IOERR, and
# read_only_sql_transaction (a session on a standby, or set read-only).
_SQLITE_CANNOT_WRITE = frozenset({8, 10})
_PG_CANNOT_WRITE = frozenset({"25006"})


def cannot_write(exc: BaseException) -> bool:
    """Whether a driver error says the connection itself cannot write. SQLite opens a connection
    read-only when the file is unwritable at that moment and keeps it so after the file becomes
    writable again: such a connection must be discarded, not retried."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_CANNOT_WRITE
    return getattr(exc, "sqlstate", None) in _PG_CANNOT_WRITE


@contextmanager
def driver_errors(conn: Connection, sql: str | None = None) -> Iterator[None]:
    """The driver's exceptions as SQLAlchemy's (IntegrityError, OperationalError, ...). A
    connection that cannot write is invalidated: the pool opens a new one for the next transaction."""
    base = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except base as exc:
        if cannot_write(exc):
            conn.connection.invalidate(exc, soft=True)  # closed when next checked out
        raise DBAPIError.instance(sql, None, exc, base) from exc
