"""Lookups of many keys at once, for a batch: previous answers, crosswalk rows, and the orders and
patients they name. Each comes in a few sizes (powers of two), so a handful of compiled (and, on
PostgreSQL, server-prepared) statements serve every batch."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select, union_all
from sqlalchemy.sql import CompoundSelect, Select
from sqlalchemy.sql.elements import BindParameter

from gateway.store import tables as t
from gateway.store.prepared import Prepared

_keys, _cw, _pt, _or = t.idempotency_keys, t.crosswalk, t.patients, t.orders

CHUNK = 64  # the most keys one lookup carries; a batch with more reads in several


def size_for(n: int) -> int:
    """Lookups come in a few sizes (powers of two, the last key repeated): a handful of compiled
    (and, on PostgreSQL, server-prepared) statements serve every batch."""
    return min(CHUNK, 1 << max(0, n - 1).bit_length())


def any_of_pairs(
    query: Select[Any], first: Any, second: Any, pairs: Iterable[tuple[Any, Any]]
) -> CompoundSelect[Any]:
    """`query` for any of the (first, second) pairs, as one point lookup a pair (UNION ALL): a
    two-column key serves each, whatever the planner's statistics say. (An OR of pairs, or a
    row-value IN, that share a namespace was planned by PostgreSQL as a scan of the whole
    namespace on a table it had not analysed yet.)"""
    return union_all(*(query.where(first == a, second == b) for a, b in pairs))


def _by_pairs(columns: list[Any], first: Any, second: Any, size: int) -> CompoundSelect[Any]:
    pairs: Iterable[tuple[BindParameter[Any], BindParameter[Any]]] = (
        (bindparam(f"a{i}"), bindparam(f"b{i}")) for i in range(size)
    )
    return any_of_pairs(select(*columns), first, second, pairs)


@lru_cache(maxsize=32)
def lookup(kind: str, size: int) -> Prepared:
    """One query for `size` keys of one kind: previous answers, crosswalk rows, orders, patients."""
    if kind == "answers":
        columns = [
            _keys.c.partner,
            _keys.c.message_id,
            _keys.c.answer,
            _keys.c.rendered,
            _keys.c.content_hash,
        ]
        return Prepared(_by_pairs(columns, _keys.c.partner, _keys.c.message_id, size))
    if kind == "crosswalk":
        columns = [_cw.c.namespace, _cw.c.value, _cw.c.patient_id, _cw.c.order_id]
        return Prepared(_by_pairs(columns, _cw.c.namespace, _cw.c.value, size))
    if kind == "orders named":  # the orders those identifiers are bound to, locked
        named = _by_pairs([_cw.c.order_id], _cw.c.namespace, _cw.c.value, size)
        return Prepared(
            select(_or.c.order_id, _or.c.document)
            .where(_or.c.order_id.in_(named))
            .order_by(_or.c.order_id)
            .with_for_update()
        )
    if kind == "patients named":
        named = _by_pairs([_cw.c.patient_id], _cw.c.namespace, _cw.c.value, size)
        return Prepared(select(_pt.c.patient_id, _pt.c.identity).where(_pt.c.patient_id.in_(named)))
    ids: list[BindParameter[Any]] = [bindparam(f"a{i}") for i in range(size)]
    if kind == "orders":  # locked in one order, so that two writers never wait on each other in a cycle
        return Prepared(
            select(_or.c.order_id, _or.c.document)
            .where(_or.c.order_id.in_(ids))
            .order_by(_or.c.order_id)
            .with_for_update()
        )
    assert kind == "patients"
    return Prepared(select(_pt.c.patient_id, _pt.c.identity).where(_pt.c.patient_id.in_(ids)))
