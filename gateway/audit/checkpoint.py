"""Checkpoints: the audit chain's head signed with a key that is not in the database.

The hash chain alone shows an edit only to someone who did not recompute it: an attacker with
the database can edit a record and rehash every record after it, and the chain verifies. A
checkpoint signs (HMAC-SHA256) the head's seq and hash with `CGT_AUDIT_KEY`, taken from the
environment, and leaves copies where that attacker does not write: an append-only file and an
`audit.checkpoint` event on the bus. A rewritten chain no longer matches a checkpoint taken
before the rewrite, and a new head cannot be signed without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, insert, select

from gateway.audit.chain import HEAD
from gateway.canonical.events import envelope
from gateway.canonical.payloads import AuditCheckpoint
from gateway.errors import ConfigError
from gateway.store.appends import PendingWrites
from gateway.store.prepared import Prepared
from gateway.store.tables import audit_checkpoints, audit_head, audit_records

DEMO_AUDIT_KEY = "demo-audit-key"  # published: refused in production
SOURCE = "/gateway/audit"


def audit_key(env: str) -> bytes:
    """The signing key from CGT_AUDIT_KEY; outside production a published demo key stands in."""
    key = os.environ.get("CGT_AUDIT_KEY")
    if env == "production":
        if not key:
            raise ConfigError("CGT_AUDIT_KEY must be set in production: it signs the audit chain")
        if key == DEMO_AUDIT_KEY:
            raise ConfigError("CGT_AUDIT_KEY is the published demo key: refused in production")
    return (key or DEMO_AUDIT_KEY).encode()


def verifying_keys(env: str) -> list[bytes]:
    """The key and those it replaced (CGT_AUDIT_PREVIOUS_KEYS, comma-separated): checkpoints
    signed before a key rotation still verify."""
    previous = os.environ.get("CGT_AUDIT_PREVIOUS_KEYS", "")
    return [audit_key(env), *(k.strip().encode() for k in previous.split(",") if k.strip())]


def key_id(key: bytes) -> str:
    """Names a key without revealing it, so that a verifier knows which key a checkpoint needs."""
    return hmac.new(key, b"cgt-audit-key-id", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: datetime
    key_id: str
    signature: str

    @staticmethod
    def signed(key: bytes, seq: int, head_hash: str, at: datetime) -> Checkpoint:
        kid = key_id(key)
        return Checkpoint(seq, head_hash, at, kid, _signature(key, seq, head_hash, at, kid))

    def genuine(self, keys: Iterable[bytes]) -> bool:
        """Signed by one of `keys`."""
        return any(
            key_id(key) == self.key_id
            and hmac.compare_digest(
                _signature(key, self.seq, self.hash, self.at, self.key_id), self.signature
            )
            for key in keys
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at.isoformat(),
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Checkpoint:
        return Checkpoint(
            int(data["seq"]),
            str(data["hash"]),
            datetime.fromisoformat(data["at"]),
            str(data["key_id"]),
            str(data["signature"]),
        )


def _signature(key: bytes, seq: int, head_hash: str, at: datetime, kid: str) -> str:
    body = {"seq": seq, "hash": head_hash, "at": at.isoformat(), "key_id": kid}
    return hmac.new(key, orjson.dumps(body, option=orjson.OPT_SORT_KEYS), hashlib.sha256).hexdigest()


# -- taking one ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Due:
    """When the head is signed again: after `records` new records, or `seconds` after the last
    checkpoint (or the first record) when anything at all was recorded since."""

    records: int
    seconds: float

    def __call__(self, head_seq: int, last: tuple[int, datetime], now: datetime) -> bool:
        """`last`: the last checkpoint's seq and time; (0, the first record's time) before any."""
        if head_seq <= last[0]:
            return False  # nothing new to sign
        return head_seq - last[0] >= self.records or (now - last[1]).total_seconds() >= self.seconds


_INSERT = Prepared(
    insert(audit_checkpoints).values(
        {name: bindparam(name) for name in ("seq", "hash", "at", "key_id", "signature", "event_id")}
    )
)


def _due(conn: Connection, head_seq: int, due: Due, now: datetime) -> bool:
    c = audit_checkpoints.c
    last = conn.execute(select(c.seq, c.at).order_by(c.seq.desc()).limit(1)).first()
    if last is not None:
        return due(head_seq, (int(last.seq), last.at), now)
    first = conn.execute(select(audit_records.c.at).where(audit_records.c.seq == 1)).scalar_one_or_none()
    return first is not None and due(head_seq, (0, first), now)


def looks_due(conn: Connection, due: Due, now: datetime) -> bool:
    """The question `take` asks under the head's lock, asked without it: cheap enough to poll."""
    head = conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar_one()
    return _due(conn, int(head), due, now)


def take(conn: Connection, key: bytes, now: datetime, due: Due) -> Checkpoint | None:
    """Sign the head when a checkpoint is due, inside the caller's (synchronous) transaction,
    with its `audit.checkpoint` event in the outbox. The head's row lock (SQLite: the writer's
    BEGIN IMMEDIATE) holds the chain still and makes replicas take turns: the second finds the
    first's checkpoint and signs nothing."""
    head = HEAD.first(conn)
    assert head is not None, "the audit chain has no head: run the migrations"
    seq, head_hash = int(head[0]), str(head[1])
    if not _due(conn, seq, due, now):
        return None
    checkpoint = Checkpoint.signed(key, seq, head_hash, now)
    payload = AuditCheckpoint(
        seq=seq, hash=head_hash, key_id=checkpoint.key_id, signature=checkpoint.signature, occurred_at=now
    )
    event = envelope("audit.checkpoint", payload.model_dump(), source=SOURCE, subject=None, time=now)
    _INSERT.execute(conn, {**checkpoint.to_json(), "at": now, "event_id": event.id})
    writes = PendingWrites()
    writes.events([event], order_id=None, inbound_id=None)
    writes.flush(conn)
    return checkpoint


# -- the file -------------------------------------------------------------------------------------
def append_to_file(path: Path, checkpoint: Checkpoint) -> None:
    """One JSON line a checkpoint, appended and flushed to disk. Several replicas may share the
    file: one `write` of a line opened for append lands whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = orjson.dumps(checkpoint.to_json()) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: Path) -> Iterator[Checkpoint | str]:
    """The file's checkpoints in order; a line that is not one comes back as a description."""
    if not path.exists():
        return
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield Checkpoint.from_json(orjson.loads(line))
            except (ValueError, KeyError, TypeError):
                yield f"line {number} of {path.name} is not a checkpoint"
