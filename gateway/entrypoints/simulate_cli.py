"""`cgt-gateway simulate`: many journeys through a running gateway, faults injected, audited."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

simulate_app = typer.Typer(
    help="Drive a running gateway with simulated journeys and audit the outcome",
    invoke_without_command=True,
    no_args_is_help=False,
)


@simulate_app.callback()
def simulate(
    ctx: typer.Context,
    journeys: int = typer.Option(50, help="how many patient journeys"),
    sites: int = typer.Option(1, help="sites (1: the demo partners; more: see `simulate config`)"),
    couriers: int = typer.Option(1, help="couriers"),
    manufacturers: int = typer.Option(1, help="manufacturers"),
    rate: float = typer.Option(0.0, help="messages a second at most (0: as fast as answered)"),
    faults: str = typer.Option("all", help="comma-separated fault kinds, 'all' or 'none'"),
    fault_rate: float = typer.Option(0.1, help="share of journeys with one injected fault"),
    seed: int = typer.Option(1, help="the plan's random seed"),
    run: int | None = typer.Option(None, help="run number 0-99 (keeps identifiers apart across runs)"),
    speed: float = typer.Option(0.0, help="simulated seconds per real second (0: a journey in ~10 s)"),
    url: str = typer.Option(
        "http://127.0.0.1:8080", help="HTTP base URL; several: comma-separated (replicas)"
    ),
    mllp: str = typer.Option("127.0.0.1:2575", help="MLLP host:port; several: comma-separated (replicas)"),
    amqp: str = typer.Option(
        "amqp://guest:guest@127.0.0.1:5672/",
        envvar="CGT_AMQP_URL",
        help="the gateway's broker: half the journeys' MES events go to the manufacturer's queue ('none': all over HTTP)",
    ),
    operator_key: str = typer.Option(
        "demo-operator-key", envvar="CGT_OPERATOR_KEY", help="to read orders back"
    ),
    report: Annotated[Path | None, typer.Option(help="write the report as JSON here")] = None,
) -> None:
    """Run journeys from order to infusion through HL7 v2/MLLP, HTTP and AMQP, inject faults, then
    print the journeys' outcome, throughput, latency by boundary and the mix-up audit."""
    if ctx.invoked_subcommand is not None:
        return
    from gateway.simulate.config import cast
    from gateway.simulate.model import ALL_FAULTS, Fault
    from gateway.simulate.session import Options
    from gateway.simulate.session import simulate as go

    kinds = (
        ALL_FAULTS
        if faults == "all"
        else ()
        if faults == "none"
        else tuple(Fault(f.strip()) for f in faults.split(","))
    )
    listeners = tuple((h, int(p)) for h, _, p in (a.strip().rpartition(":") for a in mllp.split(",")))
    options = Options(
        journeys=journeys,
        base_urls=tuple(u.strip() for u in url.split(",")),
        mllp=listeners,
        operator_key=operator_key,
        seed=seed,
        run=run,
        speed=speed,
        rate=rate,
        fault_rate=fault_rate,
        faults=kinds,
        progress=True,
        amqp=None if amqp == "none" else amqp,
    )
    result = asyncio.run(go(options, cast(sites, couriers, manufacturers)))
    for line in result.lines():
        typer.echo(line)
    for example in result.examples:
        typer.echo(f"  {example}")
    if report is not None:
        report.write_text(json.dumps(result.as_json(), indent=2), encoding="utf-8")
    raise typer.Exit(0 if result.ok else 1)


@simulate_app.command("config")
def config(
    folder: Annotated[
        Path,
        typer.Argument(
            help="where to write partners.yaml, the profiles, assignments and temperature classes"
        ),
    ],
    sites: int = typer.Option(3),
    couriers: int = typer.Option(2),
    manufacturers: int = typer.Option(2),
) -> None:
    """Write the gateway's side of a simulation with several partners of each kind, and print
    the settings to start the gateway with."""
    from gateway.simulate.config import write

    for key, value in write(folder, sites, couriers, manufacturers).items():
        typer.echo(f"export {key}='{value}'")
