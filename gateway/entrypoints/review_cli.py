"""`cgt-gateway users ...` and `cgt-gateway quarantine ...`: the gateway's own users, and
quarantine review from a terminal (the same desk as the HTTP API, gateway.service.desk).

Passwords are read from a hidden prompt, or with `--password-stdin` from the first line of
standard input (for scripts); never from the command line, where `ps` and shell history see them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from gateway.errors import GatewayError

T = TypeVar("T")

users_app = typer.Typer(help="The gateway's own users (viewer, operator, qa)", no_args_is_help=True)
quarantine_app = typer.Typer(help="Review held messages: list, show, approve, reject", no_args_is_help=True)

_STDIN = typer.Option(False, "--password-stdin", help="read the password from the first line of stdin")
_USER = typer.Option(..., "--user", "-u", help="your gateway user name")


def _password(from_stdin: bool, *, confirm: bool = False) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    answer: str = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return answer


def _desk_run(work: Callable[[Any], Awaitable[T]]) -> T:
    """`work(desk)` on the configured database; a refusal is printed (PHI-free) and exits 1."""
    from gateway.canonical.envelope import utcnow
    from gateway.identity.authorise import Authority, load_assignments
    from gateway.partners import load_partners
    from gateway.service.desk import Lockout, ReviewDesk
    from gateway.service.mes_rules import load_manufacturing_rules
    from gateway.service.transaction import Rules
    from gateway.settings import Settings
    from gateway.store.db import create_engine, dispose

    settings = Settings()

    async def run() -> T:
        partners = load_partners(settings.partners_file, env=settings.env)
        authority = Authority(partners, load_assignments(settings.assignments_file, partners))
        engine = create_engine(settings.database_url)
        try:
            rules = Rules(
                settings.coi_facility, authority, utcnow, manufacturing=load_manufacturing_rules(settings)
            )
            production = settings.env == "production"
            lockout = Lockout.of(settings)
            notices = _notices(settings, partners)
            desk = ReviewDesk(engine, rules, production=production, lockout=lockout, notices=notices)
            return await work(desk)
        finally:
            await dispose(engine)

    try:
        return asyncio.run(run())
    except GatewayError as exc:
        typer.echo(f"refused: {exc.public_message}", err=True)
        raise typer.Exit(1) from exc


def _notices(settings: Any, partners: Any) -> Any:
    """How each sender hears of a rejection: the enabled adapters, configured as `serve` does."""
    from gateway.adapter_contract import Configurable
    from gateway.registry import load_adapters, rejection_notices

    adapters = load_adapters(settings.adapters)
    for adapter in adapters.values():
        if isinstance(adapter, Configurable):
            adapter.configure(settings, partners)
    return rejection_notices(adapters, partners)


def _echo(value: Any) -> None:
    typer.echo(json.dumps(value, default=str, indent=2))


@users_app.command("add")
def users_add(
    name: str,
    role: str = typer.Option(..., "--role", help="viewer, operator or qa"),
    printed_name: str = typer.Option(..., "--printed-name", help="the name a signature shows"),
    password_stdin: bool = _STDIN,
) -> None:
    """Add a user; the password is asked (twice) or read from stdin."""
    password = _password(password_stdin, confirm=True)
    added = _desk_run(lambda desk: desk.add_user(name, role, printed_name, password))
    typer.echo(f"added {added.name} ({added.role})")


@users_app.command("demo")
def users_demo() -> None:
    """Add the demo users of the README (development only; production refuses their passwords)."""
    from gateway.service.operators import DEMO_USERS
    from gateway.settings import Settings

    if Settings().env == "production":
        typer.echo("refused: production has no demo users (their passwords are published)", err=True)
        raise typer.Exit(1)

    async def add(desk: Any) -> None:
        for name, role, printed, password in DEMO_USERS:
            await desk.add_user(name, role, printed, password)

    _desk_run(add)
    typer.echo("added " + ", ".join(n for n, *_ in DEMO_USERS))


@quarantine_app.command("list")
def quarantine_list(
    partner: str | None = typer.Option(None),
    reason: str | None = typer.Option(None),
    older_than: str | None = typer.Option(None, help="90s, 30m, 2h, 7d"),
    coi: str | None = typer.Option(None),
) -> None:
    """Held messages, oldest first (no patient data)."""
    from gateway.service.desk import parse_age

    async def run(desk: Any) -> Any:
        age = parse_age(older_than) if older_than else None
        return await desk.held(partner=partner, reason=reason, older_than=age, coi=coi)

    _echo(_desk_run(run))


@quarantine_app.command("show")
def quarantine_show(quarantine_id: str, user: str = _USER, password_stdin: bool = _STDIN) -> None:
    """One item: the raw message, its claim beside the chain of identity, why it is held (audited)."""
    password = _password(password_stdin)

    async def run(desk: Any) -> Any:
        return await desk.inspect(quarantine_id, await desk.login(user, password))

    _echo(_desk_run(run))


@quarantine_app.command("approve")
def quarantine_approve(
    quarantine_id: str,
    user: str = _USER,
    meaning: str = typer.Option(..., "--meaning", help='e.g. "reviewed: same patient, typo in the MRN"'),
    password_stdin: bool = _STDIN,
) -> None:
    """Sign an approval; the second user's releases the message."""
    password = _password(password_stdin)
    decision = _desk_run(lambda desk: desk.approve(quarantine_id, user, password, meaning))
    _echo({"quarantine_id": decision.quarantine_id, "status": decision.status, "coi": decision.coi})


@quarantine_app.command("reject")
def quarantine_reject(
    quarantine_id: str,
    user: str = _USER,
    reason: str = typer.Option(..., "--reason"),
    password_stdin: bool = _STDIN,
) -> None:
    """Reject a held message (a QA user), with the reason."""
    password = _password(password_stdin)
    decision = _desk_run(lambda desk: desk.reject(quarantine_id, user, password, reason))
    told = {"told": decision.sender_told, "how": decision.sender_notice}
    _echo({"quarantine_id": decision.quarantine_id, "status": decision.status, "sender": told})
