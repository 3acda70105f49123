"""What an attacker with write access to the database does to the audit chain."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.chain import GENESIS, AuditEntry, record_hash
from gateway.store import tables as t


async def rewrite_from(engine: AsyncEngine, seq: int) -> None:
    """What an attacker with the database does: edit a record, then recompute every hash after it
    and move the head, so that the chain links and hashes again."""
    r = t.audit_records
    async with engine.begin() as conn:
        rows = (await conn.execute(select(r).where(r.c.seq >= seq).order_by(r.c.seq))).all()
        before = (await conn.execute(select(r.c.hash).where(r.c.seq == seq - 1))).scalar()
        prev = before or GENESIS
        for row in rows:
            detail = {**row.detail, "status_to": "cancelled"} if row.seq == seq else row.detail
            digest = record_hash(
                row.seq, row.at, AuditEntry(row.actor, row.action, row.subject, detail), prev
            )
            await conn.execute(
                update(r).where(r.c.seq == row.seq).values(detail=detail, prev_hash=prev, hash=digest)
            )
            prev = digest
        await conn.execute(update(t.audit_head).where(t.audit_head.c.id == 1).values(hash=prev))
