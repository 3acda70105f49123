"""`cgt-gateway dead-letters`: what consumers gave up on (`cgt.dead`), listed, and sent back to the
queue it came from once the cause is fixed (a courier's API back, a profile corrected).

Sending back is an operator's decision: it is audited (`delivery.redelivered`), and an outbound
consumer's settled mark for the event is removed in the same transaction, so that the consumer
delivers it instead of skipping it as done. Then the message is published to its queue
(confirmed) and its dead copy acknowledged (gateway.bus.dead_letters).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from gateway.settings import Settings

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel, AbstractConnection

T = TypeVar("T")

dead_letters_app = typer.Typer(
    help="Dead letters: what consumers gave up on, listed and sent back", no_args_is_help=True
)

_LIMIT = typer.Option(1000, "--limit", min=1, help="read at most this many dead letters")


async def _channel(settings: Settings) -> tuple[AbstractConnection, AbstractChannel]:
    import aio_pika

    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    return connection, await connection.channel(publisher_confirms=True, on_return_raises=True)


def _run(work: Coroutine[Any, Any, T]) -> T:
    """`work` run; an unreachable broker is said in a line (exit 1), not as a traceback."""
    from gateway.bus.broker import BROKER_ERRORS

    try:
        return asyncio.run(work)
    except BROKER_ERRORS as exc:
        typer.echo(f"the message broker is unreachable ({type(exc).__name__}): see CGT_AMQP_URL", err=True)
        raise typer.Exit(1) from None


@dead_letters_app.command("list")
def dead_letters_list(
    limit: int = _LIMIT,
    as_json: bool = typer.Option(False, "--json", help="one JSON document, for machines"),
) -> None:
    """The dead letters, oldest first: event id, type, subject, the queue that gave it up, why.
    Reading changes nothing: every one stays where it is."""
    from gateway.bus import dead_letters

    async def run() -> list[dead_letters.DeadLetter]:
        connection, channel = await _channel(Settings())
        try:
            return [letter for letter, _ in await dead_letters.read(channel, limit)]
        finally:
            await connection.close()  # what was read goes back, unacknowledged

    letters = _run(run())
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
    from gateway.bus import dead_letters
    from gateway.service.notices import record_redelivery
    from gateway.store.db import create_engine, dispose

    wanted = set(event_ids or ())
    if bool(wanted) == every:
        typer.echo("name the event ids to send back, or --all", err=True)
        raise typer.Exit(2)
    if not dry_run and not operator:
        typer.echo("--operator NAME is required to send back for real (or use --dry-run)", err=True)
        raise typer.Exit(2)
    settings = Settings()

    async def run() -> tuple[list[dead_letters.DeadLetter], list[str]]:
        from aiormq.exceptions import DeliveryError

        connection, channel = await _channel(settings)
        engine = create_engine(settings.database_url)
        sent: list[dead_letters.DeadLetter] = []
        problems: list[str] = []
        try:
            held = await dead_letters.read(channel, limit)
            chosen = [
                (letter, message)
                for letter, message in held
                if letter.queue is not None and (every or letter.event_id in wanted)
            ]
            found = {letter.event_id for letter, _ in chosen}
            problems += [
                f"{e}: not among the dead letters, or of unknown origin" for e in sorted(wanted - found)
            ]
            queues = {letter.queue for letter, _ in chosen if letter.queue is not None}
            gone = {q for q in queues if not await dead_letters.queue_exists(connection, q)}
            for letter, message in chosen:
                assert letter.queue is not None
                if letter.queue in gone:  # its consumer was removed: nothing to send it back to
                    problems.append(f"{letter.event_id}: the queue {letter.queue} no longer exists")
                    continue
                if dry_run:
                    sent.append(letter)
                    continue
                assert operator is not None
                await record_redelivery(
                    engine,
                    event_id=letter.event_id or "-",
                    subject=letter.subject,
                    queue=letter.queue,
                    consumer=letter.consumer,
                    reason=letter.reason,
                    operator=operator,
                )
                try:
                    await dead_letters.send_back(channel, letter, message)
                except DeliveryError as exc:  # refused by the broker: it stays dead
                    problems.append(f"{letter.event_id}: not sent back ({type(exc).__name__})")
                    continue
                sent.append(letter)
            return sent, problems
        finally:
            await connection.close()  # what was not sent back stays dead
            await dispose(engine)

    sent, problems = _run(run())
    verb = "would send back" if dry_run else "sent back"
    for letter in sent:
        typer.echo(f"{verb} {letter.event_id or '-'} to {letter.queue}")
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
