"""The simulator against a real gateway process: journeys from order to infusion over HL7 v2/MLLP
and HTTP, every fault kind injected, and the mix-up audit must hold: every swapped identifier
quarantined and none applied, no clean message quarantined, no acknowledged message lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway.simulate.config import cast, write
from gateway.simulate.model import ALL_FAULTS
from gateway.simulate.session import Options, simulate
from gateway.simulate.verdict import Report
from tests.support.faults import Gateway
from tests.support.private_broker import free_port


async def _every_fault(
    gateway: Gateway, amqp_url: str, journeys: int, *, seed: int, run: int, parties: tuple[int, int, int]
) -> Report:
    """`journeys` against `gateway` (started here, stopped after), half of them with a fault."""
    gateway.start()
    try:
        options = Options(
            journeys=journeys,
            base_urls=(gateway.url,),
            mllp=(("127.0.0.1", gateway.mllp_port),),
            fault_rate=0.5,
            faults=ALL_FAULTS,
            seed=seed,
            run=run,
            amqp=amqp_url,
        )
        return await simulate(options, cast(*parties))
    finally:
        gateway.stop()


async def test_fifty_journeys_with_every_fault_kind_pass_the_mix_up_audit(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    gateway = Gateway(tmp_path, database_url, amqp_url, free_port(), free_port())
    report = await _every_fault(gateway, amqp_url, 50, seed=11, run=7, parties=(1, 1, 1))
    print("\n".join(report.lines() + report.examples))
    assert set(report.faults) == {f.value for f in ALL_FAULTS}
    assert report.swaps_injected >= 3 and report.swaps_quarantined == report.swaps_injected
    assert report.swaps_applied == 0
    assert report.false_quarantines == 0 and report.acked_lost == 0 and report.unexpected == 0
    assert report.excursions_published == report.excursions_expected > 0
    assert report.journeys_completed == report.journeys == 50
    assert report.boundaries["mes.amqp"].messages > 0 and report.boundaries["mes.http"].messages > 0
    assert report.ok


async def test_several_sites_couriers_and_manufacturers_from_simulate_config(
    amqp_url: str, tmp_path: Path
) -> None:
    """`simulate config` writes what a gateway needs to take every dialect from every simulated
    partner: 2 sites (HL7 v2 and FHIR), 2 couriers (tracking, EPCIS, logger webhooks, each its
    own secret), 2 manufacturers (CloudEvents over HTTP and AMQP), each journey's parties in turn."""
    settings = write(tmp_path / "sim", 2, 2, 2)
    gateway = Gateway(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        amqp_url,
        free_port(),
        free_port(),
        env=settings,
    )
    report = await _every_fault(gateway, amqp_url, 24, seed=5, run=9, parties=(2, 2, 2))
    print("\n".join(report.lines() + report.examples))
    assert report.journeys_completed == report.journeys == 24
    assert report.swaps_applied == 0 and report.swaps_quarantined == report.swaps_injected
    assert report.false_quarantines == 0 and report.acked_lost == 0 and report.unexpected == 0
    assert report.boundaries["site.http"].messages >= 24 * 4  # collection, infusion, two legs declared


def test_the_command_prints_the_audit_and_writes_the_report(amqp_url: str, tmp_path: Path) -> None:
    gateway = Gateway(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path}/gateway.db", amqp_url, free_port(), free_port()
    )
    gateway.start()
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway.entrypoints.cli",
                "simulate",
                "--journeys",
                "4",
                "--faults",
                "none",
                "--url",
                gateway.url,
                "--mllp",
                f"127.0.0.1:{gateway.mllp_port}",
                "--amqp",
                amqp_url,
                "--run",
                "8",
                "--report",
                str(tmp_path / "report.json"),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        gateway.stop()
    assert "mix-up audit" in out.stdout, out.stdout + out.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    for key in (
        "journeys",
        "journeys_completed",
        "swaps_injected",
        "swaps_quarantined",
        "swaps_applied",
        "false_quarantines",
        "acked_lost",
        "messages",
    ):
        assert key in report
    assert report["journeys"] == 4 and report["journeys_completed"] == 4, out.stdout
    for boundary in report["boundaries"].values():
        assert boundary["p50_ms"] > 0 and boundary["p99_ms"] >= boundary["p50_ms"]
    assert out.returncode == 0
