"""A message whose identifiers do not reconcile: kept aside for an operator, announced with
`identity.mismatch`, never applied."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.audit import AuditEntry
from gateway.canonical.command import Command
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.events import envelope, source_of
from gateway.canonical.ids import COI_NAMESPACE
from gateway.canonical.payloads import IdentityMismatch
from gateway.errors import IdentityProblem, ReceiptMismatch
from gateway.outcome import Outcome
from gateway.service.auditing import entry
from gateway.service.ports import UnitOfWork
from gateway.service.receipt import hold_named
from gateway.store.records import InboundRecord


@dataclass
class Result:
    """What processing one message produced, written after its raw row in the same transaction."""

    outcome: Outcome
    envelopes: list[CloudEvent] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    quarantine: dict[str, Any] | None = None


def quarantine(
    uow: UnitOfWork,
    record: InboundRecord,
    commands: list[Command],
    inbound_id: str,
    exc: IdentityProblem,
    now: datetime,
) -> Result:
    quarantine_id = str(uuid.uuid4())
    refs = [r for c in commands for r in c.refs]
    bindings = uow.bindings(refs)
    cois = sorted({r.value for r in refs if r.namespace == COI_NAMESPACE and r in bindings})
    notice = IdentityMismatch(
        quarantine_id=quarantine_id,
        reason=exc.reason.value,
        partner=record.partner,
        namespaces=tuple(sorted({r.namespace for r in refs})),
        candidate_cois=tuple(cois),
        occurred_at=now,
        severity=exc.severity,
    )
    event = envelope(
        "identity.mismatch",
        notice.model_dump(),
        source=source_of(record.partner, record.adapter),
        subject=cois[0] if len(cois) == 1 else None,
        time=now,
    )
    audit = entry(
        record,
        inbound_id,
        "message.quarantined",
        None,
        quarantine_id=quarantine_id,
        reason=exc.reason.value,
        why=exc.detail,
        event_id=event.id,
    )
    outcome = Outcome.of_error("quarantined", exc, inbound_id, record.partner, record.message_id)
    row = {
        "quarantine_id": quarantine_id,
        "inbound_id": inbound_id,
        "partner": record.partner,
        "reason": exc.reason.value,
        "detail": exc.detail,
        "commands": [c.model_dump(mode="json") for c in commands],
        "at": now,
    }
    holds = hold_named(uow, record, inbound_id, exc, now) if isinstance(exc, ReceiptMismatch) else []
    # the mismatch first, then each hold on its own order's timeline
    events = [event, *(h.event for h in holds)]
    update = {"event_ids": tuple(e.id for e in events), "order_ids": (None, *(h.order_id for h in holds))}
    return Result(outcome.model_copy(update=update), events, [audit, *(h.entry for h in holds)], row)
