"""Quarantine review: a held message released by two operators' signatures (four eyes), or
rejected by one QA user with a reason. Each runs in one transaction of the intake's.

A signature (21 CFR Part 11 §11.50) carries the signer's printed name, the time and its
meaning; the caller has just re-checked the signer's password (§11.200). The same user can
never sign twice. The second signature releases the message through the normal path
(gateway.service.handlers.apply_all) as if it had just arrived, with the operators' decision
recorded: for a demographic mismatch, an identity change or a disagreeing merge the decision is
"apply as is"; any other reason (an unknown identity) is reconciled again as it would be today,
and when it still does not reconcile nothing is kept (the item stays held, 409). Release and
rejection both publish `identity.resolved` through the outbox, and are audited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.audit import AuditEntry
from gateway.canonical.command import Command
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.events import envelope
from gateway.canonical.payloads import IdentityResolved
from gateway.errors import GatewayError, IdentityProblem, NotFound
from gateway.service.effects import Context
from gateway.service.handlers import apply_all
from gateway.service.operators import Operator
from gateway.service.transaction import Rules
from gateway.store import reviews
from gateway.store.records import InboundRecord
from gateway.store.unit_of_work import SqlUnitOfWork

APPROVALS_NEEDED = 2
SOURCE = "/gateway/quarantine-review"
# Reasons whose release means "apply as is": the operators decided what the check asked.
WAIVABLE = frozenset({"demographic_mismatch", "identity_change", "disagreeing_merge"})


class ReviewConflict(GatewayError):
    public_message = "the review cannot take this decision"
    http_status = 409


@dataclass
class Decision:
    """What a signature or a rejection did."""

    quarantine_id: str
    status: str  # open (waiting for another signature), released, rejected
    signatures: list[dict[str, Any]] = field(default_factory=list)
    order_id: str | None = None
    coi: str | None = None
    event_ids: list[str] = field(default_factory=list)
    sender_told: bool | None = None  # on a rejection: whether the sender's dialect can be told
    sender_notice: str | None = None  # how it is told, or why it cannot be


# (partner id, adapter name) -> how that sender is told of a rejection, or None when its dialect
# has no way (the adapters' TellsRejection, gathered at start-up).
Notices = Callable[[str, str], str | None]


def no_notice(partner: str, adapter: str) -> str | None:
    return None


def viewed(uow: SqlUnitOfWork, quarantine_id: str, viewer: Operator, now: datetime) -> None:
    """Patient data of a held message was shown to `viewer`."""
    uow.audit([_by(viewer, "quarantine.viewed", quarantine_id)], now)


def shown(uow: SqlUnitOfWork, subject: str, viewer: Operator, now: datetime, action: str) -> None:
    """Patient data of something else (an order's patient, in the console) was shown to `viewer`."""
    uow.audit([_by(viewer, action, subject)], now)


def approve(uow: SqlUnitOfWork, quarantine_id: str, signer: Operator, meaning: str, rules: Rules) -> Decision:
    signer.require("operator")
    now = rules.clock()
    held = _open(uow, quarantine_id)
    signed = reviews.signers(uow.conn, quarantine_id)
    if any(s["operator"] == signer.name for s in signed):
        raise ReviewConflict("the same user cannot sign twice: a release needs two different users")
    reviews.sign(uow.conn, quarantine_id, signer.name, signer.printed_name, meaning, now)
    signature = {
        "operator": signer.name,
        "printed_name": signer.printed_name,
        "meaning": meaning,
        "signed_at": now,
    }
    signed.append(signature)
    audit = [_by(signer, "quarantine.approved", quarantine_id, meaning=meaning, signed_at=now.isoformat())]
    decision = Decision(quarantine_id, "open", signatures=signed)
    if len(signed) >= APPROVALS_NEEDED:
        audit += _release(uow, held, signed, rules, now, decision)
    uow.audit(audit, now)
    return decision


def reject(
    uow: SqlUnitOfWork,
    quarantine_id: str,
    signer: Operator,
    reason: str,
    rules: Rules,
    notices: Notices = no_notice,
) -> Decision:
    """Rejected by one QA user. The sender is told where its dialect allows it: the event names
    the message, and the sender's outbound side renders the notice; where it cannot, the
    decision and the audit record say so."""
    signer.require("qa")
    now = rules.clock()
    held = _open(uow, quarantine_id)
    sender = {"partner": held["partner"], "adapter": held["adapter"], "message_id": held["message_id"]}
    event = _resolved(quarantine_id, "rejected", None, now, **sender)
    uow.events([event], None, held["inbound_id"])
    reviews.settle(uow.conn, quarantine_id, "rejected", held["inbound_id"], None)
    how = notices(held["partner"], held["adapter"])
    notice = how or f"the {held['adapter']} dialect has no way to tell {held['partner']} after its answer"
    entry = _by(
        signer,
        "quarantine.rejected",
        quarantine_id,
        meaning=reason,
        event_id=event.id,
        sender_told=how is not None,
        sender_notice=notice,
    )
    uow.audit([entry], now)
    return Decision(
        quarantine_id, "rejected", event_ids=[event.id], sender_told=how is not None, sender_notice=notice
    )


def _release(
    uow: SqlUnitOfWork,
    held: dict[str, Any],
    signed: list[dict[str, Any]],
    rules: Rules,
    now: datetime,
    decision: Decision,
) -> list[AuditEntry]:
    record = InboundRecord(
        partner=held["partner"],
        transport=held["transport"],
        adapter=held["adapter"],
        message_id=held["message_id"],
        received_at=held["received_at"],
        content_type=held["content_type"],
        raw=held["raw"],
    )
    commands = [Command.model_validate(c) for c in held["command"]["commands"]]
    waived = frozenset({held["reason"]}) & WAIVABLE
    sender = rules.authority.sender(record.partner)
    ctx = Context(
        uow,
        record,
        held["inbound_id"],
        now,
        sender,
        rules.authority,
        rules.coi_facility,
        waived,
        manufacturing=rules.manufacturing,
        cold_chain=rules.cold_chain,
    )
    try:
        applied = apply_all(ctx, commands)
    except IdentityProblem as exc:  # the whole transaction rolls back: the item stays held
        raise ReviewConflict(
            f"released by two signatures, but the message still does not reconcile: {exc.public_message}; "
            "it stays held",
            detail=exc.detail,
        ) from exc
    order = applied.order
    order_ids = applied.order_ids
    for event, order_id in zip(applied.envelopes, order_ids, strict=True):
        uow.events([event], order_id, held["inbound_id"])
    resolved = _resolved(held["quarantine_id"], "released", order.coi if order else None, now)
    uow.events([resolved], order.order_id if order else None, held["inbound_id"])
    reviews.settle(
        uow.conn, held["quarantine_id"], "released", held["inbound_id"], order.order_id if order else None
    )
    decision.status = "released"
    decision.order_id, decision.coi = (order.order_id, order.coi) if order else (None, None)
    decision.event_ids = [e.id for e in applied.envelopes] + [resolved.id]
    released = AuditEntry(
        actor="gateway",
        action="quarantine.released",
        subject=held["quarantine_id"],
        detail={
            "inbound_id": held["inbound_id"],
            "reason": held["reason"],
            "resolution": "apply as is" if waived else "reconciled again",
            "signatures": [
                {
                    "operator": s["operator"],
                    "printed_name": s["printed_name"],
                    "meaning": s["meaning"],
                    "signed_at": s["signed_at"].isoformat(),
                }
                for s in signed
            ],
            "event_id": resolved.id,
        },
    )
    return [*applied.audit, released]


def _open(uow: SqlUnitOfWork, quarantine_id: str) -> dict[str, Any]:
    held = reviews.locked_item(uow.conn, quarantine_id)
    if held is None:
        raise NotFound("no quarantined message has this id")
    if held["status"] != "open":
        raise ReviewConflict(f"this message was already {held['status']}")
    return held


def _resolved(
    quarantine_id: str, decision: str, coi: str | None, now: datetime, **sender: str | None
) -> CloudEvent:
    payload = IdentityResolved(quarantine_id=quarantine_id, decision=decision, occurred_at=now, **sender)
    return envelope("identity.resolved", payload.model_dump(), source=SOURCE, subject=coi, time=now)


def _by(operator: Operator, action: str, quarantine_id: str, **detail: Any) -> AuditEntry:
    """An operator's act: who (name, printed name, role), on what, and what it means."""
    detail = {"printed_name": operator.printed_name, "role": operator.role, **detail}
    return AuditEntry(actor=f"operator:{operator.name}", action=action, subject=quarantine_id, detail=detail)
