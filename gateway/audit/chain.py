"""Append to and verify the audit hash chain.

Each record holds SHA-256(canonical JSON of its own fields + the previous record's hash). The
chain head (last seq and hash) is a single row, locked while a record is appended, so records get
gapless sequence numbers in commit order and a deleted, edited or re-ordered record is found.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.prepared import Prepared
from gateway.store.tables import audit_head, audit_records

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """What happened, by whom, to what. `detail` holds identifiers and reasons, never payloads."""

    actor: str
    action: str
    subject: str | None
    detail: dict[str, Any]


def record_hash(seq: int, at: datetime, entry: AuditEntry, prev_hash: str) -> str:
    body = {
        "seq": seq,
        "at": at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "detail": entry.detail,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


_HEAD = Prepared(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update())
_MOVE_HEAD = Prepared(
    update(audit_head).where(audit_head.c.id == 1).values(seq=bindparam("seq"), hash=bindparam("hash"))
)
_APPEND = Prepared(
    insert(audit_records).values(
        {
            name: bindparam(name)
            for name in ("seq", "at", "actor", "action", "subject", "detail", "prev_hash", "hash")
        }
    )
)


def append(conn: Connection, entries: list[AuditEntry], at: datetime) -> int:
    """Append `entries` in order inside the caller's (synchronous) transaction; returns the last seq."""
    head = _HEAD.first(conn)
    assert head is not None, "the audit chain has no head: run the migrations"
    seq, prev = head
    rows = []
    for entry in entries:
        seq += 1
        digest = record_hash(seq, at, entry, prev)
        rows.append(
            {
                "seq": seq,
                "at": at,
                "actor": entry.actor,
                "action": entry.action,
                "subject": entry.subject,
                "detail": entry.detail,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    if rows:
        _APPEND.execute_many(conn, rows)
        _MOVE_HEAD.execute(conn, {"seq": seq, "hash": prev})
    return int(seq)


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_broken is None


async def _records(conn: AsyncConnection, page: int = 5000) -> AsyncIterator[Any]:
    last = 0
    while True:
        rows = (
            await conn.execute(
                select(audit_records)
                .where(audit_records.c.seq > last)
                .order_by(audit_records.c.seq)
                .limit(page)
            )
        ).all()
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1].seq


async def verify(conn: AsyncConnection) -> ChainReport:
    """Walk the chain from the start; name the first record that does not hold."""
    expected_seq, prev, checked = 1, GENESIS, 0
    async for row in _records(conn):
        if row.seq != expected_seq:
            return ChainReport(checked, expected_seq, f"record {expected_seq} is missing")
        if row.prev_hash != prev:
            return ChainReport(checked, row.seq, "does not link to the record before it")
        entry = AuditEntry(row.actor, row.action, row.subject, row.detail)
        if record_hash(row.seq, row.at, entry, row.prev_hash) != row.hash:
            return ChainReport(checked, row.seq, "its content does not match its hash")
        prev, expected_seq, checked = row.hash, expected_seq + 1, checked + 1
    head = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).one()
    if head.seq != checked or head.hash != prev:
        return ChainReport(checked, checked + 1, "records after this point were removed")
    return ChainReport(checked)
