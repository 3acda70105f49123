"""Three gateways on one PostgreSQL and one RabbitMQ under the simulator, one killed with SIGKILL
and the broker stopped and started again mid-run: the run completes with the mix-up audit
unchanged and nothing lost (bench/simulate.py --replicas 3 --kill runs the same larger)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.simulate.config import cast
from tests.support.private_broker import PrivateBroker
from tests.support.replicas import replica_run


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_three_replicas_one_killed_and_the_broker_restarted_mid_run_lose_nothing(
    database_url: str, tmp_path: Path
) -> None:
    broker = PrivateBroker()
    broker.start()
    try:
        result = await replica_run(
            database_url=database_url,
            amqp_url=broker.url,
            log_dir=tmp_path,
            cast=cast(1, 1, 1),
            journeys=30,
            broker=broker,
            restart_broker_at=0.6,
        )
    finally:
        broker.destroy()
    print("\n".join(result.lines() + result.report.examples))
    assert result.killed is not None and result.broker_restarted_at is not None  # both landed mid-run
    assert (
        result.report.swaps_applied == 0 and result.report.swaps_quarantined == result.report.swaps_injected
    )
    assert result.report.acked_lost == 0 and result.report.false_quarantines == 0
    assert result.report.journeys_completed == 30
    assert not result.missing and result.published_unique >= result.events_on_timelines
    assert result.ok
