"""One transaction over a batch of messages: for each, idempotency -> reconcile -> apply (or
quarantine, or reject) -> the raw message, its events, its answer and its audit entries.

Each message gets its own outcome. A message with several commands applies them whole or not at
all (a savepoint); one command raises any identity or lifecycle problem before it writes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from gateway.canonical.command import Command
from gateway.canonical.ids import ExternalRef
from gateway.claims import Claim
from gateway.coldchain.classes import ColdChain, default_cold_chain
from gateway.errors import GatewayError, IdentityProblem, NotOurs, TransientError
from gateway.identity.authorise import Authority
from gateway.outcome import Outcome
from gateway.service.auditing import entry, reprocessed
from gateway.service.decoding import Decode, Render, decoded
from gateway.service.effects import Context
from gateway.service.handlers import Applied, apply_all, wants_patients
from gateway.service.idempotency import Answers, repeat, reused
from gateway.service.mes_rules import ManufacturingRules, configured_rules
from gateway.service.ports import UnitOfWork
from gateway.service.quarantine import Result, quarantine
from gateway.store.records import InboundRecord

Answered = tuple[Outcome, bytes | None]
# What run_batch answers for a message whose signed attempt was taken before (nothing of it is
# stored): the intake raises Replayed to its sender instead.
REPLAYED = Outcome(status="rejected", inbound_id=None, partner="", error="Replayed", http_status=401)


@dataclass
class Job:
    record: InboundRecord
    decode: Decode
    render: Render | None
    future: asyncio.Future[Answered]
    ours_if_known: tuple[ExternalRef, ...] = ()  # see gateway.adapter_contract.Decoded
    # The signed attempt it came in, taken in the message's own transaction: a copy of the same
    # attempt is refused as a replay (None: the transport signs nothing that ages).
    claim: Claim | None = None


@dataclass(frozen=True)
class Rules:
    """What the intake is configured with: who may do what, how new COIs are made, what is logged."""

    coi_facility: str
    authority: Authority
    clock: Callable[[], datetime]
    log_phi: bool = False
    manufacturing: ManufacturingRules = field(default_factory=configured_rules)
    cold_chain: ColdChain = field(default_factory=default_cold_chain)  # temperature classes, clocks


def run_batch(uow: UnitOfWork, batch: list[Job], rules: Rules) -> list[Answered]:
    """The batch's answers, in order; whatever escapes (a transient error, a defect) fails the
    whole transaction."""
    now = rules.clock()
    audit = []
    commands = _prepare(uow, batch, rules)
    answers = Answers(uow)
    results: list[Answered] = []
    for job in batch:
        record = job.record
        if job.claim is not None and not uow.take(job.claim, now):
            results.append((REPLAYED, None))  # before its id is looked at: a copy, not a resend
            continue
        first = answers.first(record)
        if first is not None and (again := repeat(record, first)) is not None:
            results.append(again)
            continue
        if job.ours_if_known and not uow.bindings(job.ours_if_known):
            commands[id(job)] = NotOurs(
                "unknown_identifier", detail="no identifier the message names is bound"
            )
        if isinstance(nothing := commands[id(job)], NotOurs):
            # Found out only while mapping: still nothing of it is stored, nor its answer.
            outcome = _ignored(record, nothing)
            results.append((outcome, job.render(outcome) if job.render else None))
            continue
        inbound_id = str(uuid.uuid4())
        if first is not None:  # the id names another message: this one is kept and refused
            commands[id(job)] = reused(first)
        result = _process(uow, record, commands[id(job)], inbound_id, rules, now)
        outcome = result.outcome
        uow.message(inbound_id, record, outcome.status, outcome.error, outcome.order_id)
        if result.quarantine:
            uow.quarantined(**result.quarantine)
        # each event on its own order's timeline: a message may touch several orders
        order_ids = outcome.order_ids or (outcome.order_id,) * len(result.envelopes)
        for envelope_, order_id in zip(result.envelopes, order_ids, strict=True):
            uow.events([envelope_], order_id, inbound_id)
        audit.extend(result.audit)
        if record.reprocessing:
            audit.append(reprocessed(record, inbound_id, outcome.status))
        rendered = job.render(outcome) if job.render else None
        answers.claim(record, inbound_id, outcome, rendered)
        results.append((outcome, rendered))
    uow.audit(audit, now)
    return results


def _prepare(uow: UnitOfWork, batch: list[Job], rules: Rules) -> dict[int, list[Command] | GatewayError]:
    """Before the batch's messages are applied one by one: map every message, and read what
    the batch will ask (answers of repeats, crosswalk rows, orders, patients) all at once."""
    commands: dict[int, list[Command] | GatewayError] = {}
    for job in batch:
        try:
            commands[id(job)] = decoded(job.decode, log_phi=rules.log_phi)
        except GatewayError as exc:
            commands[id(job)] = exc
    every = [c for d in commands.values() if isinstance(d, list) for c in d]
    uow.load_batch(
        ((j.record.partner, j.record.message_id) for j in batch if j.record.message_id),
        [*(r for c in every for r in c.refs), *(r for j in batch for r in j.ours_if_known)],
        patients=any(map(wants_patients, every)),
    )
    return commands


def _process(
    uow: UnitOfWork,
    record: InboundRecord,
    commands: list[Command] | GatewayError,
    inbound_id: str,
    rules: Rules,
    now: datetime,
) -> Result:
    taken: list[Command] = []
    try:
        if isinstance(commands, GatewayError):
            raise commands
        taken = commands
        sender = rules.authority.sender(record.partner)
        ctx = Context(
            uow,
            record,
            inbound_id,
            now,
            sender,
            rules.authority,
            rules.coi_facility,
            manufacturing=rules.manufacturing,
            cold_chain=rules.cold_chain,
        )
        applied: Applied
        if len(taken) == 1:
            applied = apply_all(ctx, taken)  # raises before it writes: no savepoint needed
        else:
            with uow.savepoint():
                applied = apply_all(ctx, taken)
    except IdentityProblem as exc:
        return quarantine(uow, record, taken, inbound_id, exc, now)
    except TransientError:
        raise
    except GatewayError as exc:  # rejected: malformed, unmappable, illegal, not permitted
        outcome = Outcome.of_error("rejected", exc, inbound_id, record.partner, record.message_id)
        audit = entry(
            record, inbound_id, "message.rejected", None, error=type(exc).__name__, reason=exc.detail
        )
        return Result(outcome, audit=[audit])
    order = applied.order
    outcome = Outcome(
        status="applied",
        inbound_id=inbound_id,
        partner=record.partner,
        message_id=record.message_id,
        order_id=order.order_id if order else None,
        coi=order.coi if order else None,
        event_ids=tuple(e.id for e in applied.envelopes),
        order_ids=tuple(applied.order_ids),
    )
    return Result(outcome, applied.envelopes, applied.audit)


def _ignored(record: InboundRecord, exc: NotOurs) -> Outcome:
    return Outcome(
        status="ignored",
        inbound_id=None,
        partner=record.partner,
        message_id=record.message_id,
        reason=exc.public_message,
        code=exc.reason,
        http_status=exc.http_status,
    )


def store_failure(uow: UnitOfWork, record: InboundRecord, defect: str, rules: Rules) -> Outcome:
    """After a defect rolled the transaction back: keep the raw message, not its answer (a resend
    may succeed once the defect is fixed)."""
    inbound_id, now = str(uuid.uuid4()), rules.clock()
    uow.message(inbound_id, record, "rejected", "InternalError", None)
    uow.audit([entry(record, inbound_id, "message.failed", None, error=defect)], now)
    return Outcome(
        status="rejected",
        inbound_id=inbound_id,
        partner=record.partner,
        message_id=record.message_id,
        error="InternalError",
        reason="the gateway failed to process the message; it is kept",
        code="207",
        http_status=500,
    )
