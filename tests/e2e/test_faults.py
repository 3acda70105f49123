"""The durability guarantees re-checked on every change: a gateway killed with SIGKILL under load,
and a SQLite database locked by another process under load, lose no acknowledged message and
store none twice. (bench/faults.py runs the same scenarios larger, and a broker outage.)"""

from __future__ import annotations

from pathlib import Path

from tests.support.faults import kill_gateway, lock_sqlite, run
from tests.support.private_broker import free_port


async def test_a_gateway_killed_under_load_loses_no_acknowledged_message(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    report = await run(
        "kill9",
        database_url=database_url,
        amqp_url=amqp_url,
        consume_url=None,
        log_dir=tmp_path,
        ports=(free_port(), free_port()),
        fault=kill_gateway(after=40),
        senders=4,
        per_sender=40,
    )
    print(report.line())
    assert report.ok, report.line()
    assert report.resends > 0  # the kill did land in the middle of the load


async def test_a_database_locked_under_load_loses_no_acknowledged_message(
    amqp_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "gateway.db"
    report = await run(
        "locked",
        database_url=f"sqlite+aiosqlite:///{path}",
        amqp_url=amqp_url,
        consume_url=None,
        log_dir=tmp_path,
        ports=(free_port(), free_port()),
        fault=lock_sqlite(path, after=40, held_for=8.0),
        senders=4,
        per_sender=40,
    )
    print(report.line())
    assert report.ok, report.line()
