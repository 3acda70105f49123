"""The task that signs the audit chain's head when a checkpoint is due, in every replica.

It looks without locking (a read of the head and the last checkpoint) and takes the head's lock
only when a checkpoint looks due; under the lock it decides again, so replicas on one database
take one checkpoint an interval between them, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.checkpoint import Checkpoint, Due, append_to_file, looks_due, take
from gateway.canonical.envelope import utcnow
from gateway.store.db import writer_for

log = logging.getLogger(__name__)


class Checkpointer:
    def __init__(
        self,
        engine: AsyncEngine,
        key: bytes,
        due: Due,
        *,
        path: Path | None,
        poll_seconds: float = 5.0,
        on_commit: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.writer = writer_for(engine)
        self.key = key
        self.due = due
        self.path = path
        self.poll_seconds = min(poll_seconds, due.seconds)
        self.on_commit = on_commit or (lambda: None)
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def looks_due(self, now: datetime) -> bool:
        async with self.engine.connect() as conn:
            return await conn.run_sync(looks_due, self.due, now)

    async def once(self) -> Checkpoint | None:
        """Take a checkpoint if one is due; the one taken, or None."""
        now = self.clock()
        if not await self.looks_due(now):
            return None
        checkpoint = await self.writer.run(partial(self._take, now))
        if checkpoint is not None:
            self.on_commit()
            log.info("audit checkpoint signed at record %d", checkpoint.seq)
        return checkpoint

    def _take(self, now: datetime) -> Checkpoint | None:
        with self.writer.engine.begin() as conn:
            checkpoint = take(conn, self.key, now, self.due)
            if checkpoint is not None and self.path is not None:
                # Before the commit: a line whose transaction then fails still signs a head the
                # chain really had, while a committed checkpoint missing from the file would leave
                # the file short.
                append_to_file(self.path, checkpoint)
            return checkpoint

    async def run(self) -> None:
        while True:
            try:
                await self.once()
            except Exception as exc:  # a busy or unwritable database: try again at the next poll
                log.warning("audit checkpoint not taken (%s); retrying", type(exc).__name__)
            await asyncio.sleep(self.poll_seconds)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="audit-checkpoints")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
