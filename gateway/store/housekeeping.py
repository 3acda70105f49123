"""Housekeeping: what the bus needed once and never again is deleted when it is old, so that the
outbox and the consumers' ledger do not grow with every message ever taken.

- an outbox row once it was published (its event stays on the order's timeline, `events`);
- a consumer's settled mark (`consumed_events`): it answers a redelivery, which comes within
  seconds or minutes, never days;
- a record of failed logins in a row (`login_failures`) not touched since and locking nothing:
  failures further apart than the lock-out period do not add up, so it counts for nothing (and
  names that were never users' would otherwise pile up, one row each).

All are kept `keep` (CGT_OUTBOX_KEEP_HOURS, a week by default) and deleted in small batches, a
short transaction each, by the relay that published them. Nothing of the record is touched: raw
messages, events, the audit chain and quarantine are kept as long as the database is.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, or_, select, tuple_

from gateway.store import tables as t

BATCH = 1000  # rows a transaction: a short hold of SQLite's one write lock
ROUNDS = 20  # transactions a pass at most; the next pass goes on


def prune_outbox(conn: Connection, before: datetime) -> int:
    """Delete published rows sent before `before` among the oldest BATCH rows (rows are written
    and sent in id order, so the old ones are first; an unsent one is left for the relay)."""
    o = t.outbox.c
    head = conn.execute(select(o.id, o.sent_at).order_by(o.id).limit(BATCH)).all()
    old = [r.id for r in head if r.sent_at is not None and r.sent_at < before]
    if old:
        conn.execute(delete(t.outbox).where(o.id.in_(old)))
    return len(old)


def prune_consumed(conn: Connection, before: datetime) -> int:
    """Delete up to BATCH consumers' marks settled before `before` (by their time index)."""
    c = t.consumed_events.c
    old = conn.execute(
        select(c.consumer, c.event_id).where(c.consumed_at < before).order_by(c.consumed_at).limit(BATCH)
    ).all()
    if old:
        keys = [(r.consumer, r.event_id) for r in old]
        conn.execute(delete(t.consumed_events).where(tuple_(c.consumer, c.event_id).in_(keys)))
    return len(old)


def prune_login_failures(conn: Connection, before: datetime) -> int:
    """Delete up to BATCH failed-login records last touched before `before` that lock no name
    after it (by their time index)."""
    f = t.login_failures.c
    old = (
        conn.execute(
            select(f.name)
            .where(f.last_failed_at < before, or_(f.locked_until.is_(None), f.locked_until < before))
            .order_by(f.last_failed_at)
            .limit(BATCH)
        )
        .scalars()
        .all()
    )
    if old:
        conn.execute(delete(t.login_failures).where(f.name.in_(old)))
    return len(old)
