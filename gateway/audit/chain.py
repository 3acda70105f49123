"""Append to the audit hash chain (gateway.audit.verify walks it).

Each record holds SHA-256(canonical JSON of its own fields + the previous record's hash). The
chain head (last seq and hash) is a single row, locked while a record is appended, so records get
gapless sequence numbers in commit order and a deleted, edited or re-ordered record is found.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, insert, select, update

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


HEAD = Prepared(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update())
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
    head = HEAD.first(conn)
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
