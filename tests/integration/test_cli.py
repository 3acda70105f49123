"""The `cgt-gateway` commands, run as a user runs them: a separate process on a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import update

from gateway.service.intake import Intake
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from gateway.store.migrate import migrate
from tests.support.builders import place
from tests.support.drive import AUTHORITY, send


def cli(*args: str, database_url: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.entrypoints.cli", *args],
        env={**os.environ, "CGT_DATABASE_URL": database_url, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_migrate_audit_verify_and_outbox_status(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    migrated = cli("migrate", database_url=url)
    assert migrated.returncode == 0, migrated.stderr
    engine = create_engine(url)
    await migrate(engine)  # a second run is a no-op
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    for n in range(1, 4):
        await send(gate, place(n))

    status = cli("outbox", "status", database_url=url)
    assert status.returncode == 0 and json.loads(status.stdout)["backlog"] == 3

    intact = cli("audit", "verify", database_url=url)
    assert intact.returncode == 0 and "3 records" in intact.stdout

    async with engine.begin() as conn:
        await conn.execute(
            update(t.audit_records).where(t.audit_records.c.seq == 3).values(action="order.cancelled")
        )
    await dispose(engine)
    broken = cli("audit", "verify", database_url=url)
    assert broken.returncode == 1 and "record 3" in broken.stderr


def test_contracts_check_passes_on_the_committed_contracts(tmp_path: Path) -> None:
    checked = cli("contracts", "check", database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    assert checked.returncode == 0, checked.stderr
