"""The read-only ports adapters get (gateway.ports): the crosswalk and partners' views of orders.

Crosswalk lookups on SQLite run on a plain synchronous, query-only connection in threads of their
own: a read in WAL mode takes no lock, so a hospital's whole ADT feed never queues behind the
writer, and it costs one thread hop a lookup instead of aiosqlite's several.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import CompoundSelect, Select

from gateway.canonical.ids import ExternalRef
from gateway.canonical.lifecycle import OrderStatus
from gateway.canonical.order import TherapyOrder
from gateway.errors import TransientError
from gateway.identity.authorise import Assignments, is_party
from gateway.identity.disclosure import Disclosure, disclose
from gateway.partners import Partner
from gateway.ports import OrderView
from gateway.store import tables as t
from gateway.store.db import is_sqlite
from gateway.store.lookups import any_of_pairs

T = TypeVar("T")


def _read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _pairs(refs: Iterable[ExternalRef]) -> dict[tuple[str, str], ExternalRef]:
    return {(r.namespace, r.value): r for r in refs}


def _known_query(keys: list[tuple[str, str]]) -> Select[tuple[str]] | CompoundSelect[tuple[str]]:
    cw = t.crosswalk
    if len(keys) == 1:  # the usual case, and a statement SQLAlchemy compiles once
        ((namespace, value),) = keys
        return select(cw.c.namespace).where(cw.c.namespace == namespace, cw.c.value == value)
    found: CompoundSelect[tuple[str]] = any_of_pairs(select(cw.c.namespace), cw.c.namespace, cw.c.value, keys)
    return found.limit(1)


class StoreViews:
    """Crosswalk and Orders over the gateway's database."""

    def __init__(self, engine: AsyncEngine, assignments: Assignments, disclosure: Disclosure) -> None:
        self.engine = engine
        self.assignments = assignments
        self.disclosure = disclosure
        self._sync: Engine | None = None
        if is_sqlite(engine):
            self._sync = create_engine(engine.url.set(drivername="sqlite+pysqlite"))
            event.listen(self._sync, "connect", _read_only)
            self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cgt-lookup")

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        """`fn` on a read-only connection: a synchronous one in a thread on SQLite."""
        try:
            if self._sync is not None:
                sync = self._sync

                def run() -> T:
                    with sync.connect() as conn:
                        return fn(conn)

                return await asyncio.get_running_loop().run_in_executor(self._threads, run)
            async with self.engine.connect() as conn:
                return await conn.run_sync(fn)
        except DBAPIError as exc:
            raise TransientError(detail=f"read: {type(exc.orig).__name__}") from exc

    async def close(self) -> None:
        if self._sync is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._threads.shutdown)
            self._sync.dispose()

    # -- Crosswalk ----------------------------------------------------------------------------
    async def any_known(self, refs: Iterable[ExternalRef]) -> bool:
        keys = list(_pairs(refs))
        if not keys:
            return False
        return await self._read(lambda conn: conn.execute(_known_query(keys)).first() is not None)

    async def bound(self, refs: Iterable[ExternalRef]) -> set[ExternalRef]:
        wanted = _pairs(refs)
        if not wanted:
            return set()
        cw = t.crosswalk

        def read(conn: Connection) -> set[ExternalRef]:
            rows = conn.execute(
                any_of_pairs(select(cw.c.namespace, cw.c.value), cw.c.namespace, cw.c.value, wanted)
            )
            return {wanted[(r.namespace, r.value)] for r in rows}

        return await self._read(read)

    async def statuses(self, refs: Iterable[ExternalRef]) -> dict[ExternalRef, OrderStatus]:
        wanted = _pairs(refs)
        if not wanted:
            return {}
        cw, o = t.crosswalk, t.orders
        query = select(cw.c.namespace, cw.c.value, o.c.status).join(o, o.c.order_id == cw.c.order_id)

        def read(conn: Connection) -> dict[ExternalRef, OrderStatus]:
            rows = conn.execute(any_of_pairs(query, cw.c.namespace, cw.c.value, wanted))
            return {wanted[(r.namespace, r.value)]: OrderStatus(r.status) for r in rows}

        return await self._read(read)

    # -- Orders -------------------------------------------------------------------------------
    def _view(
        self, conn: Connection, partner: Partner, order_id: str, prospective: bool = False
    ) -> OrderView | None:
        row = conn.execute(select(t.orders.c.document).where(t.orders.c.order_id == order_id)).first()
        if row is None:
            return None
        order = TherapyOrder.model_validate(row.document)
        if not prospective and not is_party(partner, order, self.assignments):
            return None
        cw = t.crosswalk
        rows = conn.execute(
            select(cw.c.namespace, cw.c.value)
            .where(
                (cw.c.order_id == order_id)
                | ((cw.c.patient_id == order.patient_id) & cw.c.order_id.is_(None))
            )
            .order_by(cw.c.bound_at, cw.c.namespace)
        )
        refs = (ExternalRef(namespace=r.namespace, value=r.value) for r in rows)
        # The one filter every outbound path goes through: the partner's disclosure profile.
        shown, visible = disclose(order, refs, partner, self.disclosure)
        return OrderView(shown, visible)

    async def view(self, partner: Partner, order_id: str, *, prospective: bool = False) -> OrderView | None:
        return await self._read(lambda conn: self._view(conn, partner, order_id, prospective))

    async def find(self, partner: Partner, namespaces: Iterable[str], value: str) -> list[OrderView]:
        wanted = list(namespaces)
        if not wanted:
            return []
        cw = t.crosswalk

        def read(conn: Connection) -> list[OrderView]:
            rows = conn.execute(
                select(cw.c.order_id)
                .where(cw.c.namespace.in_(wanted), cw.c.value == value, cw.c.order_id.is_not(None))
                .distinct()
            )
            views = [self._view(conn, partner, r.order_id) for r in rows]
            return sorted((v for v in views if v is not None), key=lambda v: v.order.created_at)

        return await self._read(read)
