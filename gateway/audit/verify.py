"""Verify the audit chain: each record against its hash and its predecessor, and the chain against
the signed checkpoints of its head (gateway.audit.checkpoint).

The walk names the first record that does not hold, whatever a row holds: a `detail` that is not
JSON or an `at` that is not a time is a broken record, not a crash. Rows are read without the
columns' conversions and converted one by one, so that a bad value is met on its own row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, select, type_coerce
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import NullType

from gateway.audit.chain import GENESIS, AuditEntry, record_hash
from gateway.audit.checkpoint import Checkpoint
from gateway.store.tables import audit_checkpoints, audit_head, audit_records


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken: int | None = None
    reason: str | None = None
    checkpoints: int = 0  # signed checkpoints the chain was found to match
    covered: int = 0  # records up to the last of them: after it, only the chain vouches for itself
    problems: tuple[str, ...] = ()  # checkpoints that are not genuine or cannot be read

    @property
    def ok(self) -> bool:
        return self.first_broken is None and not self.problems


class _Broken(Exception):
    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq, self.reason = seq, reason


def _raw(column: Column[Any]) -> Any:
    return type_coerce(column, NullType()).label(column.name)


def _converter(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any]:
    process = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return process or (lambda value: value)


async def _rows(conn: AsyncConnection, page: int = 5000) -> AsyncIterator[Any]:
    last: Any = 0
    while True:
        rows = (
            await conn.execute(
                select(*map(_raw, audit_records.c))
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


def _check(
    row: Any, expected_seq: int, prev: str, at: Callable[[Any], Any], detail: Callable[[Any], Any]
) -> None:
    if row.seq != expected_seq:
        raise _Broken(expected_seq, f"record {expected_seq} is missing")
    if row.prev_hash != prev:
        raise _Broken(expected_seq, "does not link to the record before it")
    try:
        when = at(row.at)
    except Exception as exc:  # whatever the column holds
        raise _Broken(expected_seq, f"its time (at) cannot be read ({type(exc).__name__})") from exc
    if when is None:
        raise _Broken(expected_seq, "its time (at) is empty")
    try:
        content = detail(row.detail)
    except Exception as exc:
        raise _Broken(expected_seq, f"its detail is not JSON ({type(exc).__name__})") from exc
    try:
        digest = record_hash(
            row.seq, when, AuditEntry(row.actor, row.action, row.subject, content), row.prev_hash
        )
    except Exception as exc:
        raise _Broken(expected_seq, f"it cannot be read ({type(exc).__name__})") from exc
    if digest != row.hash:
        raise _Broken(expected_seq, "its content does not match its hash")


async def stored_checkpoints(conn: AsyncConnection) -> list[Checkpoint | str]:
    """The checkpoints the database holds (an attacker may have removed or added some: each is
    checked against the key, and the file's copies count as much)."""
    found: list[Checkpoint | str] = []
    at = _converter(audit_checkpoints.c.at, conn.dialect)
    c = audit_checkpoints.c
    for row in await conn.execute(select(*map(_raw, (c.id, c.seq, c.hash, c.at, c.key_id, c.signature)))):
        try:
            found.append(
                Checkpoint(int(row.seq), str(row.hash), at(row.at), str(row.key_id), str(row.signature))
            )
        except Exception:
            found.append(f"checkpoint row {row.id} in the database cannot be read")
    return found


def genuine(
    checkpoints: Iterable[Checkpoint | str], keys: Sequence[bytes]
) -> tuple[dict[int, set[str]], list[str]]:
    """The hashes the key signed, by seq, and the checkpoints that are not genuine or not readable."""
    problems: list[str] = []
    signed: dict[int, set[str]] = {}
    for cp in checkpoints:
        if isinstance(cp, str):
            problems.append(cp)
        elif not cp.genuine(keys):
            problems.append(
                f"the checkpoint of record {cp.seq} at {cp.at.isoformat()} is not signed by the key"
            )
        else:
            signed.setdefault(cp.seq, set()).add(cp.hash)
    return signed, problems


async def verify(
    conn: AsyncConnection, checkpoints: Iterable[Checkpoint | str] = (), keys: Sequence[bytes] = ()
) -> ChainReport:
    """Walk the chain from the start; name the first record that does not hold. `checkpoints`
    (from the file, the database, the bus) are checked against `keys` and then against the chain."""
    signed, problems = genuine(checkpoints, keys)
    pending = sorted(signed)
    at = _converter(audit_records.c.at, conn.dialect)
    detail = _converter(audit_records.c.detail, conn.dialect)
    expected_seq, prev, checked, agreed, matched = 1, GENESIS, 0, 0, 0

    def report(first: int | None = None, reason: str | None = None) -> ChainReport:
        return ChainReport(checked, first, reason, matched, agreed, tuple(problems))

    async for row in _rows(conn):
        try:
            _check(row, expected_seq, prev, at, detail)
        except _Broken as broken:
            return report(broken.seq, broken.reason)
        if pending and pending[0] == row.seq:
            if signed[row.seq] != {row.hash}:
                agrees = f"up to record {agreed} and not after it" if agreed else "at no checkpoint"
                return report(
                    agreed + 1,
                    f"rewritten: the chain agrees with its signed checkpoints {agrees}"
                    f" (record {row.seq} is not the one signed then)",
                )
            pending.pop(0)
            agreed, matched = row.seq, matched + 1
        prev, expected_seq, checked = row.hash, expected_seq + 1, checked + 1
    if pending:
        return report(
            checked + 1,
            f"records after {checked} were removed: a checkpoint signed the chain up to record {pending[-1]}",
        )
    head = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).one()
    if head.seq != checked or head.hash != prev:
        return report(checked + 1, "records after this point were removed")
    return report()
