"""The ADT filter: a hospital sends every patient's ADT; only patients the gateway knows matter.

An ADT message whose patient identifiers are all absent from the crosswalk is acknowledged AA at
once and dropped, with nothing of it stored. Anything the filter cannot judge (it does not parse,
it names no MRN) goes the normal way, so that it is stored and answered properly.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import CompoundSelect, Select

from adapters.hl7v2.identity import patient_refs
from adapters.hl7v2.profile import SiteProfile, parse_within_limits
from gateway import metrics
from gateway.canonical.ids import ExternalRef
from gateway.errors import GatewayError, TransientError
from gateway.store.db import is_sqlite
from gateway.store.lookups import any_of_pairs
from gateway.store.tables import crosswalk

_DROPPED = Counter(
    "cgt_hl7v2_adt_dropped_total", "ADT messages acknowledged and dropped: patient unknown", ["partner"]
)


@dataclass(frozen=True)
class _Drop:
    partner: str

    def inc(self) -> None:
        _DROPPED.labels(self.partner).inc()
        metrics.IGNORED.labels(self.partner, "hl7v2", "patient_unknown").inc()


class _Dropped:
    """`DROPPED.labels(partner).inc()`: counts a dropped ADT in cgt_hl7v2_adt_dropped_total and,
    with all other traffic acknowledged and ignored, in cgt_inbound_ignored_total (reason
    `patient_unknown`), so one metric shows everything a site sends that the gateway ignores."""

    def labels(self, partner: str) -> _Drop:
        return _Drop(partner)


DROPPED = _Dropped()


def adt_patient_refs(raw: bytes, profile: SiteProfile) -> list[ExternalRef]:
    """The MRNs of an ADT message, or [] when the filter cannot tell (the message goes on)."""
    try:
        message = parse_within_limits(raw, profile)
        return patient_refs(message, profile)
    except GatewayError:
        return []


def _read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _query(refs: list[ExternalRef]) -> Select[tuple[str]] | CompoundSelect[tuple[str]]:
    cw = crosswalk
    if len(refs) == 1:  # the usual case, and a statement SQLAlchemy compiles once
        return select(cw.c.namespace).where(cw.c.namespace == refs[0].namespace, cw.c.value == refs[0].value)
    keys = [(r.namespace, r.value) for r in refs]
    found: CompoundSelect[tuple[str]] = any_of_pairs(select(cw.c.namespace), cw.c.namespace, cw.c.value, keys)
    return found.limit(1)


class CrosswalkLookup:
    """Read-only lookups of the crosswalk. On SQLite they run on a plain synchronous connection
    in a thread of their own: a read in WAL mode takes no lock, so a hospital's whole ADT feed
    never queues behind the writer, and it costs one thread hop a lookup instead of aiosqlite's
    several."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sync: Engine | None = None
        if is_sqlite(engine):
            self._sync = create_engine(engine.url.set(drivername="sqlite+pysqlite"))
            event.listen(self._sync, "connect", _read_only)
            self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cgt-hl7-lookup")

    def _known(self, refs: list[ExternalRef]) -> bool:
        assert self._sync is not None
        with self._sync.connect() as conn:
            return conn.execute(_query(refs)).first() is not None

    async def any_known(self, refs: list[ExternalRef]) -> bool:
        try:
            if self._sync is not None:
                return await asyncio.get_running_loop().run_in_executor(self._threads, self._known, refs)
            async with self.engine.connect() as conn:
                return (await conn.execute(_query(refs))).first() is not None
        except DBAPIError as exc:
            raise TransientError(detail=f"crosswalk lookup: {type(exc.orig).__name__}") from exc

    async def close(self) -> None:
        if self._sync is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._threads.shutdown)
            self._sync.dispose()
