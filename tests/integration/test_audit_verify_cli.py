"""`cgt-gateway audit verify` and `audit checkpoint`, run as an operator runs them: a process of
their own on a real database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
from sqlalchemy import delete

from gateway.service.intake import Intake
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from gateway.store.migrate import migrate
from tests.support.audit import rewrite_from
from tests.support.builders import place
from tests.support.drive import AUTHORITY, send


def cli(
    *args: str, database_url: str, checkpoints: Path, key: str = "the-operators-key"
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CGT_DATABASE_URL": database_url,
        "CGT_AUDIT_CHECKPOINTS_FILE": str(checkpoints),
        "CGT_AUDIT_KEY": key,
    }
    return subprocess.run(
        [sys.executable, "-m", "gateway.entrypoints.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_verify_names_a_record_whose_detail_is_not_json_or_whose_time_does_not_parse(
    tmp_path: Path,
) -> None:
    """On SQLite, where a column holds whatever is written to it (PostgreSQL's json and timestamptz
    columns refuse such values)."""
    database = tmp_path / "gw.db"
    url, checkpoints = f"sqlite+aiosqlite:///{database}", tmp_path / "audit-checkpoints.jsonl"
    engine = create_engine(url)
    await migrate(engine)
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    for n in range(1, 5):
        await send(gate, place(n))
    await dispose(engine)

    with sqlite3.connect(database) as db:
        kept = db.execute("SELECT detail FROM audit_records WHERE seq = 2").fetchone()[0]
        db.execute("UPDATE audit_records SET detail = '{\"inbound_id\": ' WHERE seq = 2")
    bad_json = cli("audit", "verify", database_url=url, checkpoints=checkpoints)
    assert bad_json.returncode == 1 and "Traceback" not in bad_json.stderr
    assert "BROKEN at record 2: its detail is not JSON" in bad_json.stderr

    with sqlite3.connect(database) as db:
        db.execute("UPDATE audit_records SET detail = ? WHERE seq = 2", (kept,))
        db.execute("UPDATE audit_records SET at = 'the day before yesterday' WHERE seq = 3")
    bad_time = cli("audit", "verify", database_url=url, checkpoints=checkpoints)
    assert bad_time.returncode == 1 and "Traceback" not in bad_time.stderr
    assert "BROKEN at record 3: its time (at) cannot be read" in bad_time.stderr

    with sqlite3.connect(database) as db:
        db.execute("UPDATE audit_records SET at = 42 WHERE seq = 3")  # not even text
    assert "BROKEN at record 3" in cli("audit", "verify", database_url=url, checkpoints=checkpoints).stderr


async def test_checkpoint_then_verify_catches_a_rewritten_chain(database_url: str, tmp_path: Path) -> None:
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    assert cli("migrate", database_url=database_url, checkpoints=checkpoints).returncode == 0
    engine = create_engine(database_url)
    try:
        gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
        for n in range(1, 4):
            await send(gate, place(n))
        signed = cli("audit", "checkpoint", database_url=database_url, checkpoints=checkpoints)
        assert signed.returncode == 0 and "record 3" in signed.stdout, signed.stderr
        again = cli("audit", "checkpoint", database_url=database_url, checkpoints=checkpoints)
        assert again.returncode == 0 and "nothing to sign" in again.stdout
        for n in range(4, 6):
            await send(gate, place(n))
        intact = cli("audit", "verify", database_url=database_url, checkpoints=checkpoints)
        assert intact.returncode == 0, intact.stderr
        assert "intact: 5 records" in intact.stdout and "up to record 3; 2 records after" in intact.stdout

        other_key = cli("audit", "verify", database_url=database_url, checkpoints=checkpoints, key="another")
        assert (
            other_key.returncode == 1 and "record 3" in other_key.stderr and "not signed" in other_key.stderr
        )

        await rewrite_from(engine, 2)
        async with engine.begin() as conn:
            await conn.execute(delete(t.audit_checkpoints))
        broken = cli("audit", "verify", database_url=database_url, checkpoints=checkpoints)
        assert broken.returncode == 1
        assert "BROKEN at record 1: rewritten" in broken.stderr and "Traceback" not in broken.stderr
    finally:
        await dispose(engine)


async def test_export_then_verify_the_export_and_catch_an_edit_or_a_rewrite(
    database_url: str, tmp_path: Path
) -> None:
    checkpoints, out = tmp_path / "audit-checkpoints.jsonl", tmp_path / "audit.json"
    assert cli("migrate", database_url=database_url, checkpoints=checkpoints).returncode == 0
    engine = create_engine(database_url)
    try:
        gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
        for n in range(1, 4):
            await send(gate, place(n))
        assert cli("audit", "checkpoint", database_url=database_url, checkpoints=checkpoints).returncode == 0
        exported = cli(
            "audit", "export", "--out", str(out), database_url=database_url, checkpoints=checkpoints
        )
        assert exported.returncode == 0 and "exported 3 audit records" in exported.stdout, exported.stderr
        bundle = orjson.loads(out.read_bytes())
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
        intact = cli(
            "audit", "verify", "--export", str(out), database_url=database_url, checkpoints=checkpoints
        )
        assert intact.returncode == 0 and "intact: 3 records" in intact.stdout, intact.stderr
        assert "1 signed checkpoints match it, up to record 3" in intact.stdout

        out.write_text(out.read_text().replace('\\"status_to\\":\\"', '\\"status_to\\":\\"x', 1))
        edited = cli(
            "audit", "verify", "--export", str(out), database_url=database_url, checkpoints=checkpoints
        )
        assert edited.returncode == 1 and "Traceback" not in edited.stderr
        assert "BROKEN at record 1: its content does not match its hash" in edited.stderr

        stdout = cli(
            "audit", "export", "--from", "2000-01-01", database_url=database_url, checkpoints=checkpoints
        )
        assert stdout.returncode == 0 and len(orjson.loads(stdout.stdout)["entry"]) >= 3

        await rewrite_from(engine, 2)  # hashes recomputed: only the signed checkpoint shows it
        cli("audit", "export", "--out", str(out), database_url=database_url, checkpoints=checkpoints)
        rewritten = cli(
            "audit", "verify", "--export", str(out), database_url=database_url, checkpoints=checkpoints
        )
        assert rewritten.returncode == 1
        assert (
            "BROKEN at record 1: rewritten" in rewritten.stderr
            and "record 3 is not the one signed" in rewritten.stderr
        )
    finally:
        await dispose(engine)
