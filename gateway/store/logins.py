"""The store of logins: failed attempts in a row per user name (the lock-out), a password hash
replaced after a good login, and the console's server-side sessions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import tables as t

_f, _s = t.login_failures, t.console_sessions


# -- lock-out -----------------------------------------------------------------------------------
async def failures_of(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    """The name's failures in a row and until when it is locked; None: no failure since the last login."""
    row = (await conn.execute(select(_f).where(_f.c.name == name))).first()
    return dict(row._mapping) if row else None


# The lock-out's writes run on the writer (gateway.store.unit_of_work), whose BEGIN takes the write
# lock: a read-then-write in a deferred SQLite transaction could find its snapshot stale.
def failed(conn: Connection, name: str, now: datetime, limit: int, lock_for: timedelta) -> bool:
    """One more failure in a row for `name`; True when it now locks the name. Failures further
    apart than the lock-out period do not add up."""
    row = conn.execute(select(_f).where(_f.c.name == name)).first()
    recent = row is not None and row.last_failed_at >= now - lock_for
    failures = (row.failures if row and recent else 0) + 1
    locked = now + lock_for if failures >= limit else None
    values = {"failures": 0 if locked else failures, "last_failed_at": now, "locked_until": locked}
    if row is None:
        conn.execute(insert(_f).values(name=name, **values))
    else:
        conn.execute(update(_f).where(_f.c.name == name).values(**values))
    return locked is not None


def succeeded(conn: Connection, name: str, password_hash: str | None) -> None:
    """A good login: the failures in a row forgotten, and the password's hash replaced if given."""
    conn.execute(delete(_f).where(_f.c.name == name))
    if password_hash is not None:
        conn.execute(
            update(t.operators).where(t.operators.c.name == name).values(password_hash=password_hash)
        )


# -- console sessions ---------------------------------------------------------------------------
async def open_session(
    conn: AsyncConnection, token_sha256: str, operator: str, csrf: str, now: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        insert(_s).values(
            token_sha256=token_sha256,
            operator=operator,
            csrf=csrf,
            created_at=now,
            seen_at=now,
            expires_at=expires_at,
        )
    )


async def session(conn: AsyncConnection, token_sha256: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(_s).where(_s.c.token_sha256 == token_sha256))).first()
    return dict(row._mapping) if row else None


async def seen(conn: AsyncConnection, token_sha256: str, now: datetime, expires_at: datetime) -> None:
    await conn.execute(
        update(_s).where(_s.c.token_sha256 == token_sha256).values(seen_at=now, expires_at=expires_at)
    )


async def close_session(conn: AsyncConnection, token_sha256: str) -> None:
    await conn.execute(delete(_s).where(_s.c.token_sha256 == token_sha256))


async def close_expired(conn: AsyncConnection, now: datetime) -> None:
    await conn.execute(delete(_s).where(_s.c.expires_at < now))
