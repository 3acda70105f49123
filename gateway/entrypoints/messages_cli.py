"""`cgt-gateway messages`: what an operator does with stored inbound messages (re-processing)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.errors import ConfigError
from gateway.settings import Settings

if TYPE_CHECKING:  # the service is imported when the command runs, not when the CLI starts
    from gateway.service.reprocess import Report

messages_app = typer.Typer(help="Stored inbound messages", no_args_is_help=True)


@messages_app.command("reprocess")
def messages_reprocess(
    inbound_ids: Annotated[list[str], typer.Argument(help="the inbound ids of stored messages")],
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would happen; write nothing"),
    operator: str | None = typer.Option(None, help="who asks (recorded in the audit trail)"),
    show_values: bool = typer.Option(False, "--show-values", help="show identifier values (PHI)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON document, for machines"),
) -> None:
    """Run stored messages again through today's mapping, as from their partner (after a profile
    fix): --dry-run shows the commands and the difference from the first time; otherwise they
    are applied under the normal rules, audited, once (a second run changes nothing)."""
    from gateway.entrypoints.bootstrap import bootstrap
    from gateway.service.reprocess import reprocess
    from gateway.store.db import dispose

    if not dry_run and not operator:
        typer.echo("--operator NAME is required to re-process for real (or use --dry-run)", err=True)
        raise typer.Exit(2)
    try:
        gateway = bootstrap(Settings())
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc.public_message}", err=True)
        raise typer.Exit(2) from exc

    async def run() -> list[Report]:
        try:
            return [
                await reprocess(
                    gateway.engine,
                    gateway.intake,
                    gateway.partners,
                    gateway.adapters,
                    inbound_id,
                    operator=operator,
                    dry_run=dry_run,
                    show_values=show_values,
                )
                for inbound_id in inbound_ids
            ]
        finally:
            await gateway.views.close()
            await dispose(gateway.engine)

    reports = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps({"dry_run": dry_run, "messages": [r.as_json() for r in reports]}, indent=2))
    else:
        for report in reports:
            typer.echo(_reprocess_text(report, dry_run=dry_run))
    if any(r.refused for r in reports):
        raise typer.Exit(1)


def _reprocess_text(report: Report, *, dry_run: bool) -> str:
    lines = [
        f"inbound {report.inbound_id}" + (f" ({report.partner}, {report.adapter})" if report.partner else "")
    ]
    if report.refused:
        return "\n".join([*lines, f"  cannot be re-processed: {report.refused}"])
    for command in report.commands:
        lines.append(f"  command: {json.dumps(command, sort_keys=True)}")
    if not report.commands:
        lines.append("  command: none")
    lines.append(f"  first time: {report.first}")
    lines.append(f"  now: {report.now}" + (" (dry run: nothing written)" if dry_run else ""))
    if not dry_run:
        lines.append(
            f"  kept as inbound {report.new_inbound_id}"
            + ("; re-processed before: nothing changed" if report.repeat else "")
        )
    lines.append("  difference: " + ("; ".join(report.difference()) or "none"))
    return "\n".join(lines)
