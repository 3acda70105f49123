"""Reads for the FHIR routes and Task push: orders by the site's identifiers, and their Tasks.

A site sees only orders it placed; anyone else's order is "not found", never "forbidden".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.fhir.profile import SiteProfile
from gateway.canonical.ids import ExternalRef
from gateway.canonical.lifecycle import OrderStatus
from gateway.canonical.order import TherapyOrder
from gateway.store import tables as t
from gateway.store.lookups import any_of_pairs


@dataclass(frozen=True)
class OrderView:
    order: TherapyOrder
    refs: tuple[ExternalRef, ...]  # the order's identifiers, and its patient's MRNs at this site


async def order_statuses(engine: AsyncEngine, refs: Iterable[ExternalRef]) -> dict[ExternalRef, OrderStatus]:
    """The status of the order each identifier is bound to (absent: not bound)."""
    wanted = {(r.namespace, r.value): r for r in refs}
    if not wanted:
        return {}
    cw, o = t.crosswalk, t.orders
    async with engine.connect() as conn:
        bound = select(cw.c.namespace, cw.c.value, o.c.status).join(o, o.c.order_id == cw.c.order_id)
        rows = await conn.execute(any_of_pairs(bound, cw.c.namespace, cw.c.value, wanted))
        return {wanted[(r.namespace, r.value)]: OrderStatus(r.status) for r in rows}


async def bound(engine: AsyncEngine, refs: Iterable[ExternalRef]) -> set[ExternalRef]:
    """Those of the identifiers the crosswalk binds to a patient or an order."""
    wanted = {(r.namespace, r.value): r for r in refs}
    if not wanted:
        return set()
    cw = t.crosswalk
    async with engine.connect() as conn:
        query = select(cw.c.namespace, cw.c.value)
        rows = await conn.execute(any_of_pairs(query, cw.c.namespace, cw.c.value, wanted))
        return {wanted[(r.namespace, r.value)] for r in rows}


async def order_view(conn: AsyncConnection, order_id: str, profile: SiteProfile) -> OrderView | None:
    row = (await conn.execute(select(t.orders.c.document).where(t.orders.c.order_id == order_id))).first()
    if row is None:
        return None
    order = TherapyOrder.model_validate(row.document)
    if order.ordering_site.id != profile.partner:
        return None
    cw = t.crosswalk
    mrn = profile.rule("mrn").namespace
    rows = await conn.execute(
        select(cw.c.namespace, cw.c.value)
        .where(
            (cw.c.order_id == order_id)
            | ((cw.c.patient_id == order.patient_id) & cw.c.order_id.is_(None) & (cw.c.namespace == mrn))
        )
        .order_by(cw.c.bound_at, cw.c.namespace)
    )
    refs = tuple(ExternalRef(namespace=r.namespace, value=r.value) for r in rows)
    return OrderView(order, refs)


async def orders_by_identifier(
    conn: AsyncConnection, namespaces: Iterable[str], value: str, profile: SiteProfile
) -> list[OrderView]:
    cw = t.crosswalk
    rows = await conn.execute(
        select(cw.c.order_id)
        .where(cw.c.namespace.in_(list(namespaces)), cw.c.value == value, cw.c.order_id.is_not(None))
        .distinct()
    )
    views = [await order_view(conn, r.order_id, profile) for r in rows]
    return sorted((v for v in views if v is not None), key=lambda v: v.order.created_at)
