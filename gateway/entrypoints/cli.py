"""`cgt-gateway`: serve, relay, migrate, contracts, audit, outbox, messages, simulate."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer

from gateway.entrypoints.dead_letters_cli import dead_letters_app
from gateway.entrypoints.messages_cli import messages_app
from gateway.entrypoints.review_cli import quarantine_app, users_app
from gateway.entrypoints.simulate_cli import simulate_app
from gateway.errors import ConfigError
from gateway.settings import Settings

app = typer.Typer(help="CGT interoperability gateway", no_args_is_help=True, add_completion=False)
contracts_app = typer.Typer(help="Generated contracts: JSON Schemas and AsyncAPI", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail", no_args_is_help=True)
outbox_app = typer.Typer(help="The transactional outbox", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")
app.add_typer(audit_app, name="audit")
app.add_typer(outbox_app, name="outbox")
app.add_typer(simulate_app, name="simulate")

T = TypeVar("T")


def _with_engine(work: Callable[[Any], Awaitable[T]], *, fast_loop: bool = False) -> T:
    from gateway.store.db import create_engine, dispose

    async def run() -> T:
        engine = create_engine(Settings().database_url)
        try:
            return await work(engine)
        finally:
            await dispose(engine)

    factory = None
    if fast_loop:  # uvloop where it is installed (it comes with uvicorn[standard]), as serve runs
        with contextlib.suppress(ImportError):
            import uvloop

            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run())


@app.command()
def serve(
    host: str | None = typer.Option(None, help="HTTP bind address (CGT_HTTP_HOST)"),
    port: int | None = typer.Option(None, help="HTTP port (CGT_HTTP_PORT)"),
) -> None:
    """Run the gateway: HTTP API, outbox relay and every adapter's transports."""
    import uvicorn

    from gateway.entrypoints.http import create_app
    from gateway.entrypoints.server import server_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()
    try:
        application = create_app(settings=settings)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc.public_message}", err=True)
        raise typer.Exit(2) from exc
    config = server_config(
        application,
        settings,
        host=host or settings.http_host,
        port=port or settings.http_port,
        log_level="info",
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:  # the start-up failed (and said why): exit as uvicorn.run does
        raise typer.Exit(3)


@app.command()
def relay(
    poll_seconds: float = typer.Option(0.05, min=0.001, help="how often to look for new events"),
) -> None:
    """Publish the outbox to RabbitMQ, in a process of its own (with CGT_RELAY=separate on serve).

    Run one or several: they share the work through leases (and SKIP LOCKED on PostgreSQL)."""
    from gateway.bus.broker import Broker
    from gateway.bus.relay import OutboxRelay
    from gateway.store.migrate import migrate as run_migrations

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()

    async def run(engine: Any) -> None:
        await run_migrations(engine)
        outbox = OutboxRelay(
            engine,
            Broker(settings.amqp_url),
            batch=settings.outbox_batch,
            poll_seconds=poll_seconds,
            linger_seconds=0,
            lease_seconds=settings.outbox_lease_seconds,
            keep=timedelta(hours=settings.outbox_keep_hours),
        )
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        outbox.start()
        logging.getLogger(__name__).info("outbox relay started (database %s)", engine.dialect.name)
        try:
            await stopping.wait()
        finally:
            await outbox.stop()  # gives back what it claimed and did not publish

    _with_engine(run, fast_loop=True)


@app.command()
def migrate() -> None:
    """Apply the database migrations (SQLite by default, PostgreSQL by CGT_DATABASE_URL)."""
    from gateway.store.migrate import migrate as run

    _with_engine(run)
    typer.echo("database is at the latest migration")


@contracts_app.command("export")
def contracts_export() -> None:
    """Write contracts/ from the canonical models."""
    from gateway.contracts import CONTRACTS_DIR, write_contracts

    written = write_contracts(CONTRACTS_DIR)
    typer.echo(f"wrote {len(written)} files under {CONTRACTS_DIR}")


@contracts_app.command("check")
def contracts_check() -> None:
    """Fail when contracts/ differs from what the models generate."""
    from gateway.contracts import CONTRACTS_DIR, drift

    differences = drift(CONTRACTS_DIR)
    if differences:
        for path in differences:
            typer.echo(f"drifted: {path}", err=True)
        typer.echo("run: cgt-gateway contracts export", err=True)
        raise typer.Exit(1)
    typer.echo("contracts match the models")


@audit_app.command("verify")
def audit_verify(
    checkpoints: str | None = typer.Option(
        None, help="the checkpoint file (default: CGT_AUDIT_CHECKPOINTS_FILE or beside the database)"
    ),
    export: str | None = typer.Option(
        None, help="check this FHIR export (audit export) instead of the table"
    ),
) -> None:
    """Walk the audit hash chain against its signed checkpoints; name the first broken record."""
    from gateway.audit import verify
    from gateway.audit.checkpoint import read_file, verifying_keys
    from gateway.audit.export import verify_export
    from gateway.audit.verify import stored_checkpoints

    settings = Settings()
    path = Path(checkpoints) if checkpoints else settings.checkpoints_file
    try:
        keys = verifying_keys(settings.env)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc.public_message}", err=True)
        raise typer.Exit(2) from exc

    exported = orjson.loads(Path(export).read_bytes()) if export is not None else None

    async def run(engine: Any) -> Any:
        async with engine.connect() as conn:
            signed = [*read_file(path), *await stored_checkpoints(conn)]
            if exported is not None:
                return verify_export(exported, signed, keys)
            return await verify(conn, signed, keys)

    report = _with_engine(run)
    for problem in report.problems:
        typer.echo(f"checkpoint problem: {problem}", err=True)
    if report.first_broken is not None:
        typer.echo(
            f"audit chain BROKEN at record {report.first_broken}: {report.reason} "
            f"({report.checked} records verified before it)",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"audit chain intact: {report.checked} records")
    if report.checkpoints:
        typer.echo(
            f"{report.checkpoints} signed checkpoints match it, up to record {report.covered}; "
            f"{report.checked - report.covered} records after that are vouched for by the chain alone"
        )
    else:
        typer.echo(f"no signed checkpoint found ({path} and the database): checked against itself only")
    if report.problems:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    since: Annotated[
        datetime | None, typer.Option("--from", help="records at or after this time (ISO 8601)")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option("--to", help="records before this time (ISO 8601)")
    ] = None,
    coi: str | None = typer.Option(None, help="only the records of this order (its COI)"),
    out: str | None = typer.Option(None, help="write the Bundle here (default: standard output)"),
) -> None:
    """Export the audit chain as a FHIR R4 Bundle of AuditEvents (and Provenance for applied changes)."""
    from gateway.audit.export import export

    def utc(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    async def run(engine: Any) -> Any:
        async with engine.connect() as conn:
            return await export(conn, since=utc(since), until=utc(until), coi=coi)

    document = orjson.dumps(_with_engine(run), option=orjson.OPT_INDENT_2)
    if out is None:
        sys.stdout.buffer.write(document + b"\n")
        return
    Path(out).write_bytes(document)
    events = sum(1 for e in orjson.loads(document)["entry"] if e["resource"]["resourceType"] == "AuditEvent")
    typer.echo(f"exported {events} audit records to {out}")


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's head now (the gateway does it by itself at intervals): database, file, bus."""
    from gateway.audit.checkpoint import Due, audit_key
    from gateway.audit.checkpointer import Checkpointer

    settings = Settings()
    try:
        key = audit_key(settings.env)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc.public_message}", err=True)
        raise typer.Exit(2) from exc

    async def run(engine: Any) -> Any:
        # Due at once when anything was recorded since the last checkpoint.
        return await Checkpointer(
            engine, key, Due(records=1, seconds=0), path=settings.checkpoints_file
        ).once()

    checkpoint = _with_engine(run)
    if checkpoint is None:
        typer.echo("nothing to sign: no record since the last checkpoint")
        return
    typer.echo(f"signed the audit chain at record {checkpoint.seq} ({settings.checkpoints_file})")


@outbox_app.command("status")
def outbox_status() -> None:
    """How many events wait for the broker, and the oldest one's age."""
    from gateway.canonical.envelope import utcnow
    from gateway.store.repository import outbox_backlog

    async def run(engine: Any) -> Any:
        async with engine.connect() as conn:
            return await outbox_backlog(conn)

    backlog, oldest = _with_engine(run)
    age = (utcnow() - oldest).total_seconds() if oldest else 0.0
    typer.echo(json.dumps({"backlog": backlog, "oldest_age_seconds": round(age, 3)}))


# Quarantine review and the users who do it (gateway.entrypoints.review_cli), stored messages
# (gateway.entrypoints.messages_cli), dead letters (gateway.entrypoints.dead_letters_cli).
app.add_typer(messages_app, name="messages")
app.add_typer(users_app, name="users")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(dead_letters_app, name="dead-letters")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
