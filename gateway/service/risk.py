"""Schedule risk: will the product reach the site in time for the planned infusion?

    projected release  = released_at, else (started_at or slot_start) + the product's manufacturing time
    projected delivery = the outbound shipment's delivered_at, else its expected_delivery, else
                         projected release + the manufacturer's transit time to the site
    slack              = planned infusion - margin - projected delivery      (at risk when < 0)

Re-assessed after every event applied to an order (any of those dates may have moved), and
published as `order.at_risk` only when its state changes: the order becomes at risk, its slack
moves by the configured step or more while at risk, or it is back on schedule (`at_risk: false`).
What was last published is kept on the order (`schedule_risk`). Durations are data
(`mappings/mes/schedule.yaml`), margin and step are settings (docs/mes-rules.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.audit import AuditEntry
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.events import order_event
from gateway.canonical.lifecycle import TERMINAL
from gateway.canonical.order import Product, ScheduleRisk, ShipmentDirection, TherapyOrder
from gateway.canonical.payloads import AtRisk
from gateway.errors import ConfigError
from gateway.service.auditing import by_gateway
from gateway.store.records import InboundRecord

SOURCE = "/gateway/schedule-risk"


class _Manufacturing(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    duration: timedelta = Field(gt=timedelta(0))


class _Transit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    manufacturer: str = Field(min_length=1)
    site: str | None = None
    duration: timedelta = Field(gt=timedelta(0))


class _ScheduleFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    manufacturing_default: timedelta = Field(gt=timedelta(0))
    transit_default: timedelta = Field(gt=timedelta(0))
    manufacturing: tuple[_Manufacturing, ...] = ()
    transit: tuple[_Transit, ...] = ()


class Schedule:
    """How long manufacturing takes per product, and the outbound transit per manufacturer and site."""

    def __init__(
        self,
        *,
        manufacturing_default: timedelta,
        transit_default: timedelta,
        manufacturing: Iterable[tuple[str, str, timedelta]] = (),
        transit: Iterable[tuple[str, str | None, timedelta]] = (),
    ) -> None:
        self.manufacturing_default, self.transit_default = manufacturing_default, transit_default
        self._making = {(system, code): d for system, code, d in manufacturing}
        self._transit: dict[tuple[str | None, str | None], timedelta] = {
            (maker, site): d for maker, site, d in transit
        }

    def making(self, product: Product) -> timedelta:
        return self._making.get((product.system, product.code), self.manufacturing_default)

    def transit(self, manufacturer: str | None, site: str) -> timedelta:
        found = self._transit.get((manufacturer, site)) or self._transit.get((manufacturer, None))
        return found or self.transit_default


def load_schedule(path: Path) -> Schedule:
    try:
        parsed = _ScheduleFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"schedule {path}: {exc}") from exc
    return Schedule(
        manufacturing_default=parsed.manufacturing_default,
        transit_default=parsed.transit_default,
        manufacturing=((m.system, m.code, m.duration) for m in parsed.manufacturing),
        transit=((t.manufacturer, t.site, t.duration) for t in parsed.transit),
    )


@dataclass(frozen=True)
class RiskRules:
    schedule: Schedule
    margin: timedelta
    step: timedelta  # while at risk, a slack that moved by this much is published again


def projection(order: TherapyOrder, rules: RiskRules) -> AtRisk | None:
    """The order's schedule as the gateway projects it, or None when it cannot be projected
    (no planned infusion, nothing to project delivery from, an order that is over)."""
    planned = order.infusion.planned_at
    if planned is None or order.status in TERMINAL:
        return None
    made = order.manufacturing
    begun = made.started_at or made.slot_start
    release = made.released_at or (begun + rules.schedule.making(order.product) if begun else None)
    outbound = [s for s in order.shipments if s.direction is ShipmentDirection.to_site]
    delivery = next((d for s in reversed(outbound) if (d := s.delivered_at or s.expected_delivery)), None)
    if delivery is None and release is not None:
        maker = made.manufacturer.id if made.manufacturer else None
        delivery = release + rules.schedule.transit(maker, order.ordering_site.id)
    if delivery is None:
        return None
    slack = planned - rules.margin - delivery
    return AtRisk(
        projected_release=release,
        projected_delivery=delivery,
        planned_infusion=planned,
        margin_s=int(rules.margin.total_seconds()),
        slack_s=int(slack.total_seconds()),
        at_risk=slack < timedelta(0),
    )


def news(order: TherapyOrder, rules: RiskRules, now: datetime) -> AtRisk | None:
    """The `order.at_risk` to publish after an event, or None when the risk state did not change."""
    current = projection(order, rules)
    if current is None:
        return None
    last = order.schedule_risk
    was_at_risk = last is not None and last.at_risk
    if not current.at_risk and not was_at_risk:
        return None
    moved = last is None or abs(current.slack_s - last.slack_s) >= rules.step.total_seconds()
    if current.at_risk and was_at_risk and not moved:
        return None
    return current.model_copy(update={"occurred_at": now})


def remembered(order: TherapyOrder, published: AtRisk) -> TherapyOrder:
    return order.model_copy(
        update={"schedule_risk": ScheduleRisk(at_risk=published.at_risk, slack_s=published.slack_s)}
    )


def notice(
    record: InboundRecord, inbound_id: str, now: datetime, order: TherapyOrder, at_risk: AtRisk
) -> tuple[CloudEvent, AuditEntry]:
    """The `order.at_risk` event, published by the gateway, and its audit entry."""
    event = order_event("order.at_risk", order, at_risk, source=SOURCE, time=now)
    audit = by_gateway(
        record,
        inbound_id,
        "order.at_risk",
        order.coi,
        event_id=event.id,
        order_id=order.order_id,
        at_risk=at_risk.at_risk,
        slack_s=at_risk.slack_s,
    )
    return event, audit
