"""`cgt-gateway dead-letters`: what consumers gave up on (`cgt.dead`), listed, and sent back to the
queue it came from once the cause is fixed (a courier's API back, a profile corrected), audited
(gateway.service.redelivery; the console's Dead letters page does the same)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer

from gateway.settings import Settings

T = TypeVar("T")

dead_letters_app = typer.Typer(
    help="Dead letters: what consumers gave up on, listed and sent back", no_args_is_help=True
)

_LIMIT = typer.Option(1000, "--limit", min=1, help="read at most this many dead letters")


def _run(work: Coroutine[Any, Any, T]) -> T:
    """`work` run; an unreachable broker is said in a line (exit 1), not as a traceback."""
    from gateway.errors import TransientError

    try:
        return asyncio.run(work)
    except TransientError as exc:
        typer.echo(f"{exc.public_message}: see CGT_AMQP_URL", err=True)
        raise typer.Exit(1) from None


@dead_letters_app.command("list")
def dead_letters_list(
    limit: int = _LIMIT,
    as_json: bool = typer.Option(False, "--json", help="one JSON document, for machines"),
) -> None:
    """The dead letters, oldest first: event id, type, subject, the queue that gave it up, why.
    Reading changes nothing: every one stays where it is."""
    from gateway.service.redelivery import dead_letters_of

    letters = _run(dead_letters_of(Settings().amqp_url, limit))
    if as_json:
        typer.echo(json.dumps([letter.summary() for letter in letters], indent=2))
        return
    if not letters:
        typer.echo("no dead letters")
    for letter in letters:
        when = f"{letter.at:%Y-%m-%d %H:%M:%S}Z" if letter.at else "-"
        typer.echo(
            f"{letter.position:>4}  {letter.event_id or '-'}  {letter.type or '-'}  {letter.subject or '-'}"
            f"  from {letter.queue or '?'}  {letter.reason}  {when}"
        )


@dead_letters_app.command("redeliver")
def dead_letters_redeliver(
    event_ids: Annotated[list[str] | None, typer.Argument(help="the event ids to send back")] = None,
    every: bool = typer.Option(False, "--all", help="send back every dead letter of known origin"),
    operator: str | None = typer.Option(None, help="who decides (recorded in the audit trail)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would go back; change nothing"),
    limit: int = _LIMIT,
) -> None:
    """Send dead letters back to the queue that gave them up, once the cause is fixed: audited,
    the consumer's settled mark removed, published (confirmed), the dead copy acknowledged."""
    from gateway.service.redelivery import Redelivery, redeliver
    from gateway.store.db import create_engine, dispose

    wanted = set(event_ids or ())
    if bool(wanted) == every:
        typer.echo("name the event ids to send back, or --all", err=True)
        raise typer.Exit(2)
    if not dry_run and not operator:
        typer.echo("--operator NAME is required to send back for real (or use --dry-run)", err=True)
        raise typer.Exit(2)
    settings = Settings()

    async def run() -> Redelivery:
        engine = create_engine(settings.database_url)
        try:
            return await redeliver(
                settings.amqp_url,
                engine,
                event_ids=None if every else wanted,
                operator=operator or "-",
                dry_run=dry_run,
                limit=limit,
            )
        finally:
            await dispose(engine)

    report = _run(run())
    verb = "would send back" if dry_run else "sent back"
    for letter in report.sent:
        typer.echo(f"{verb} {letter.event_id or '-'} to {letter.queue}")
    for problem in report.problems:
        typer.echo(problem, err=True)
    if report.problems:
        raise typer.Exit(1)
