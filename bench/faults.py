"""The fault suite, larger than in `make test`: a gateway killed with SIGKILL under load (SQLite and
PostgreSQL), the broker stopped under load, the SQLite database locked by another process. Prints
what was acknowledged, stored and published per scenario; exits 1 when anything acknowledged was
lost or stored twice. Bounded: every scenario has a fixed count and stops by itself; it talks only
to 127.0.0.1.

    .venv/bin/python bench/faults.py [--senders 8] [--per-sender 100] [--only kill9-sqlite,...]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scratch import private_vhost

from tests.support.faults import Report, kill_gateway, lock_sqlite, run, stop_broker
from tests.support.private_broker import PrivateBroker, free_port

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def scratch_database() -> str:
    name = f"cgt_faults_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def main(args: argparse.Namespace) -> int:
    reports: list[Report] = []
    wanted = set(args.only.split(",")) if args.only else None
    size = {"senders": args.senders, "per_sender": args.per_sender}
    with tempfile.TemporaryDirectory() as tmp, private_vhost() as amqp_url:
        tmpdir = Path(tmp)

        def ports() -> tuple[int, int]:
            return free_port(), free_port()

        if wanted is None or "kill9-sqlite" in wanted:
            url = f"sqlite+aiosqlite:///{tmpdir}/kill9.db"
            reports.append(
                await run(
                    "kill9-sqlite",
                    database_url=url,
                    amqp_url=amqp_url,
                    consume_url=None,
                    log_dir=tmpdir,
                    ports=ports(),
                    fault=kill_gateway(after=args.senders * args.per_sender // 3),
                    **size,
                )
            )
        if wanted is None or "kill9-postgresql" in wanted:
            reports.append(
                await run(
                    "kill9-postgresql",
                    database_url=await scratch_database(),
                    amqp_url=amqp_url,
                    consume_url=None,
                    log_dir=tmpdir,
                    ports=ports(),
                    fault=kill_gateway(after=args.senders * args.per_sender // 3),
                    **size,
                )
            )
        if wanted is None or "locked-sqlite" in wanted:
            path = tmpdir / "locked.db"
            reports.append(
                await run(
                    "locked-sqlite",
                    database_url=f"sqlite+aiosqlite:///{path}",
                    amqp_url=amqp_url,
                    consume_url=None,
                    log_dir=tmpdir,
                    ports=ports(),
                    fault=lock_sqlite(path, after=args.senders * args.per_sender // 3, held_for=20.0),
                    **size,
                )
            )
        if wanted is None or "broker-down" in wanted:
            broker = PrivateBroker()
            broker.start()
            try:
                reports.append(
                    await run(
                        "broker-down",
                        database_url=f"sqlite+aiosqlite:///{tmpdir}/broker.db",
                        amqp_url=broker.url,
                        consume_url=broker.url,
                        log_dir=tmpdir,
                        ports=ports(),
                        fault=stop_broker(broker, after=args.senders * args.per_sender // 3, down_for=15.0),
                        **size,
                    )
                )
            finally:
                broker.destroy()
    for report in reports:
        print(report.line())
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--per-sender", type=int, default=100)
    parser.add_argument(
        "--only", default=None, help="kill9-sqlite,kill9-postgresql,locked-sqlite,broker-down"
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
