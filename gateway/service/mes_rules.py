"""The manufacturing rules the intake applies (docs/mes-rules.md), read and checked at start-up:
which QC tests release each product, and how the schedule risk is projected."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Protocol

from gateway.canonical.command import Command
from gateway.canonical.lifecycle import OrderStatus, transition_refusal
from gateway.canonical.order import TherapyOrder
from gateway.errors import ReleaseRefused
from gateway.identity.authorise import Authority
from gateway.partners import Partner
from gateway.service.ports import UnitOfWork
from gateway.service.release import ReleaseTests, load_release_tests, release_refusal
from gateway.service.risk import RiskRules, load_schedule
from gateway.settings import Settings


@dataclass(frozen=True)
class ManufacturingRules:
    release: ReleaseTests
    risk: RiskRules


class RuleContext(Protocol):
    """What an order rule sees of the handler's context (gateway.service.handlers.Context)."""

    @property
    def uow(self) -> UnitOfWork: ...
    @property
    def sender(self) -> Partner: ...
    @property
    def authority(self) -> Authority: ...
    @property
    def manufacturing(self) -> ManufacturingRules: ...


def load_manufacturing_rules(settings: Settings) -> ManufacturingRules:
    """Raises ConfigError for a file that is missing or badly shaped: the gateway does not start."""
    risk = RiskRules(
        load_schedule(settings.schedule_file),
        margin=timedelta(hours=settings.risk_margin_hours),
        step=timedelta(hours=settings.risk_slack_step_hours),
    )
    return ManufacturingRules(load_release_tests(settings.release_tests_file), risk)


@cache
def configured_rules() -> ManufacturingRules:
    """The rules the environment configures (CGT_*, else mappings/mes/), read once: the intake's
    default when it is built without rules of its own (tests, tools)."""
    return load_manufacturing_rules(Settings())


def check_release(ctx: RuleContext, command: Command, order: TherapyOrder) -> None:
    """`manufacturing.released` waits for every required QC test to pass (gateway.service.release);
    an order the lifecycle refuses to release is refused by it, with its own reason."""
    if transition_refusal(order.status, OrderStatus.released):
        return
    refusal = release_refusal(order, ctx.manufacturing.release)
    if refusal:
        raise ReleaseRefused(refusal, detail=f"{order.coi}: {refusal}")
