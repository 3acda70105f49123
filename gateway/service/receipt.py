"""The receipt rule at the manufacturer's door: a bag that is not the order's collection is
quarantined (`receipt_mismatch`, severity critical) and every order it names is put on hold, in
the quarantine's transaction; nothing of the receipt is applied (docs/mes-rules.md).

Three ways in: the scans disagree with the order the receipt resolved to (`check_receipt`); the
receipt's own identifiers do not reconcile (`escalated`: two orders, an unknown DIN); and the hold
itself (`hold_named`), written by gateway.service.quarantine beside the `identity.mismatch`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.audit import AuditEntry
from gateway.canonical.command import Command
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.events import order_event
from gateway.canonical.ids import ExternalRef
from gateway.canonical.lifecycle import ACTIVE, OrderStatus
from gateway.canonical.order import TherapyOrder
from gateway.canonical.payloads import MaterialReceived, WithReason
from gateway.errors import IdentityProblem, ReceiptMismatch
from gateway.identity import Binding
from gateway.identity.authorise import is_party
from gateway.identity.receipt import receipt_findings, scanned_refs
from gateway.service.auditing import by_gateway
from gateway.service.mes_rules import RuleContext
from gateway.service.ports import UnitOfWork
from gateway.store.records import InboundRecord

RECEIPT = "manufacturing.material_received"
SOURCE = "/gateway/receipt-verification"


def check_receipt(ctx: RuleContext, command: Command, order: TherapyOrder) -> None:
    """Raise ReceiptMismatch unless the scans are the order's collection."""
    assert isinstance(command.payload, MaterialReceived)
    findings = receipt_findings(order, command.payload)
    if findings:
        named = _named_orders(ctx, command, {})
        raise ReceiptMismatch(detail="; ".join(findings), order_ids=_held(ctx, order.order_id, named))


def escalated(
    ctx: RuleContext, command: Command, bindings: Mapping[ExternalRef, Binding], exc: IdentityProblem
) -> IdentityProblem:
    """A receipt that does not reconcile is a receipt mismatch; any other command keeps its problem."""
    if command.event != RECEIPT or isinstance(exc, ReceiptMismatch):
        return exc
    named = _named_orders(ctx, command, bindings)
    return ReceiptMismatch(detail=f"{exc.reason.value}: {exc.detail}", order_ids=_held(ctx, None, named))


def _named_orders(ctx: RuleContext, command: Command, bindings: Mapping[ExternalRef, Binding]) -> list[str]:
    assert isinstance(command.payload, MaterialReceived)
    scanned = ctx.uow.bindings(scanned_refs(command.payload))
    found = [b.order_id for b in (*bindings.values(), *scanned.values()) if b.order_id]
    return list(dict.fromkeys(found))


def _held(ctx: RuleContext, claimed: str | None, named: list[str]) -> tuple[str, ...]:
    """The orders to hold: the one the receipt is for, and the others its scans name that the
    sender is a party to (a partner cannot hold another party's order by naming it)."""
    others = [
        o for o in named if o != claimed and is_party(ctx.sender, ctx.uow.order(o), ctx.authority.assignments)
    ]
    return (claimed, *others) if claimed else tuple(others)


@dataclass(frozen=True)
class Hold:
    event: CloudEvent
    entry: AuditEntry
    order_id: str


def hold_named(
    uow: UnitOfWork, record: InboundRecord, inbound_id: str, exc: ReceiptMismatch, now: datetime
) -> list[Hold]:
    """Put each named live order on hold and publish `order.held`. An order already on hold stays
    so and is told again (the new reason matters); a finished order takes no hold."""
    holds: list[Hold] = []
    for order_id in exc.order_ids:
        before = uow.order(order_id)
        if before.status not in ACTIVE and before.status is not OrderStatus.on_hold:
            continue
        held = before.model_copy(
            update={
                "status": OrderStatus.on_hold,
                "status_before_hold": before.status_before_hold or before.status,
                "version": before.version + 1,
                "updated_at": now,
            }
        )
        uow.update_order(held)
        reason = WithReason(occurred_at=now, reason=f"{exc.reason.value}: {exc.public_message}")
        event = order_event("order.held", held, reason, source=SOURCE, time=now)
        audit = by_gateway(
            record,
            inbound_id,
            "order.held",
            held.coi,
            event_id=event.id,
            order_id=order_id,
            status_from=before.status.value,
            status_to=held.status.value,
            reason=exc.reason.value,
        )
        holds.append(Hold(event, audit, order_id))
    return holds
