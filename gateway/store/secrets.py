"""The Secrets port (gateway.ports.Secrets) over the database: keys the gateway makes for
itself, and a memory of used one-time keys, both shared by every replica and kept across restarts.

The replay memory is the table `smart_assertions` (client id, jti), named after its first user,
SMART Backend Services assertions.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import TransientError
from gateway.store.tables import gateway_secrets, smart_assertions

SECRET_BYTES = 32  # a made secret: 256 bits, URL-safe base64


class StoreSecrets:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def secret(self, name: str) -> str:
        """The stored secret; else one made now by the first replica that asks (a race between
        two is settled by the primary key: both read the winner's)."""
        chosen = select(gateway_secrets.c.secret).where(gateway_secrets.c.name == name)
        try:
            async with self.engine.begin() as conn:
                stored = (await conn.execute(chosen)).scalar_one_or_none()
                if stored is not None:
                    return str(stored)
            try:
                async with self.engine.begin() as conn:
                    made = secrets.token_urlsafe(SECRET_BYTES)
                    row = {"name": name, "secret": made, "created_at": datetime.now(UTC)}
                    await conn.execute(insert(gateway_secrets).values(row))
                    return made
            except IntegrityError:
                async with self.engine.connect() as conn:
                    return str((await conn.execute(chosen)).scalar_one())
        except DBAPIError as exc:
            raise TransientError("the database is unavailable", detail=str(exc.orig)) from exc

    async def first_use(self, holder: str, key: str, expires_at: datetime) -> bool:
        """Expired keys are purged on the way."""
        try:
            async with self.engine.begin() as conn:
                expired = smart_assertions.c.expires_at < datetime.now(UTC)
                await conn.execute(delete(smart_assertions).where(expired))
                row = {"client_id": holder, "jti": key, "expires_at": expires_at}
                await conn.execute(insert(smart_assertions).values(row))
        except IntegrityError:
            return False
        except DBAPIError as exc:
            raise TransientError("the database is unavailable", detail=str(exc.orig)) from exc
        return True
