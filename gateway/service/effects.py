"""What a handler is given (Context) and what it returns (Effect), shared by the handlers'
modules (gateway.service.handlers, gateway.service.readings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gateway.audit import AuditEntry
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.order import TherapyOrder
from gateway.coldchain.classes import ColdChain, default_cold_chain
from gateway.identity.authorise import Authority
from gateway.partners import Partner
from gateway.service.mes_rules import ManufacturingRules, configured_rules
from gateway.service.ports import UnitOfWork
from gateway.store.records import InboundRecord


@dataclass(frozen=True)
class Context:
    """What a handler is given beside its command: the transaction, the message, the rules."""

    uow: UnitOfWork
    record: InboundRecord
    inbound_id: str
    now: datetime
    sender: Partner
    authority: Authority
    coi_facility: str
    # Quarantine reasons two operators decided to apply the message despite (a release from
    # review, gateway.service.review): "apply as is".
    waived: frozenset[str] = frozenset()
    cold_chain: ColdChain = field(default_factory=default_cold_chain)
    manufacturing: ManufacturingRules = field(default_factory=configured_rules)


@dataclass(frozen=True)
class Effect:
    event: CloudEvent
    entry: AuditEntry
    order: TherapyOrder | None = None  # None: a patient's event
    # What the gateway itself publishes because of it (an excursion, a logger fault), same order.
    derived: tuple[tuple[CloudEvent, AuditEntry], ...] = ()
