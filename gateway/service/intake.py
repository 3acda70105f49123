"""One inbound message, one transaction: idempotency -> reconcile -> apply -> audit -> outbox.

Only after `receive` returns has the message been durably stored; only then may the caller
acknowledge it. Nothing of a quarantined or rejected message is applied, and its raw bytes stay.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import AuditEntry, append
from gateway.canonical.apply import apply_event
from gateway.canonical.catalogue import Scope
from gateway.canonical.command import Command
from gateway.canonical.envelope import CloudEvent, utcnow
from gateway.canonical.ids import COI_NAMESPACE, coi_ref, new_coi
from gateway.canonical.order import PatientIdentity, TherapyOrder
from gateway.canonical.payloads import IdentityMismatch, OrderPlaced, PatientMerged, PatientUpdated
from gateway.errors import (
    ContractViolation,
    GatewayError,
    IdentityProblem,
    MappingError,
    TransientError,
    UnsupportedMessage,
)
from gateway.identity import Resolution, reconcile
from gateway.service.events import envelope, order_event, source_of
from gateway.service.outcome import Outcome
from gateway.store.repository import InboundRecord, Repository

log = logging.getLogger(__name__)

Decode = Callable[[], list[Command]]
Render = Callable[[Outcome], bytes]
ATTEMPTS = 3


@dataclass
class _Applied:
    """What applying a message's commands produced, before it is committed."""

    envelopes: list[CloudEvent] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    order: TherapyOrder | None = None


class Intake:
    """The service: turns decoded inbound messages into committed state and outbox rows."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        coi_facility: str,
        on_commit: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.coi_facility = coi_facility
        self.on_commit = on_commit or (lambda: None)
        self.clock = clock

    async def receive(
        self, record: InboundRecord, decode: Decode, render: Render | None = None
    ) -> tuple[Outcome, bytes | None]:
        """Process one message; returns its outcome and the rendered answer to send back."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                result = await self._once(record, decode, render)
            except IntegrityError as exc:
                # A concurrent transaction bound the same identifier or moved the same order
                # first: run again, and reconciliation sees what it did.
                log.info("intake retry %d after a concurrent change", attempt)
                if attempt == ATTEMPTS:
                    raise TransientError(detail=f"concurrent change: {type(exc).__name__}") from exc
                continue
            except DBAPIError as exc:
                raise TransientError(detail=f"database: {type(exc.orig).__name__}") from exc
            self.on_commit()
            return result
        raise AssertionError("unreachable")

    async def _once(
        self, record: InboundRecord, decode: Decode, render: Render | None
    ) -> tuple[Outcome, bytes | None]:
        async with self.engine.begin() as conn:
            repo = Repository(conn)
            if record.message_id:
                previous = await repo.previous_answer(record.partner, record.message_id)
                if previous is not None:
                    answer, rendered = previous
                    return Outcome.model_validate({**answer, "duplicate": True}), rendered
            now = self.clock()
            inbound_id = await repo.save_inbound(record, "received")
            applied, commands = _Applied(), []
            try:
                commands = _decoded(decode)
                async with conn.begin_nested():
                    applied = await self._apply_all(repo, record, commands, inbound_id, now)
                outcome = Outcome(
                    status="applied",
                    inbound_id=inbound_id,
                    partner=record.partner,
                    message_id=record.message_id,
                    order_id=applied.order.order_id if applied.order else None,
                    coi=applied.order.coi if applied.order else None,
                    event_ids=tuple(e.id for e in applied.envelopes),
                )
            except IdentityProblem as exc:
                applied, outcome = await self._quarantine(repo, record, commands, inbound_id, exc, now)
            except TransientError:
                raise
            except GatewayError as exc:  # rejected: malformed, unmappable, illegal, not permitted
                outcome = Outcome.of_error("rejected", exc, inbound_id, record.partner, record.message_id)
                applied = _Applied()
                applied.audit.append(
                    self._entry(
                        record,
                        inbound_id,
                        "message.rejected",
                        None,
                        error=type(exc).__name__,
                        reason=exc.detail,
                    )
                )
            await repo.add_events(applied.envelopes, outcome.order_id, inbound_id)
            await repo.finish_inbound(inbound_id, outcome.status, outcome.error, outcome.order_id)
            await append(conn, applied.audit, now)
            rendered = render(outcome) if render else None
            if record.message_id:
                await repo.remember_answer(
                    record.partner,
                    record.message_id,
                    inbound_id,
                    outcome.model_dump(mode="json"),
                    rendered,
                )
            return outcome, rendered

    # -- applying ---------------------------------------------------------------------------
    async def _apply_all(
        self,
        repo: Repository,
        record: InboundRecord,
        commands: list[Command],
        inbound_id: int,
        now: datetime,
    ) -> _Applied:
        applied = _Applied()
        for command in commands:
            bindings = await repo.bindings(command.refs)
            patients = await repo.patients({b.patient_id for b in bindings.values()})
            resolution = reconcile(command, bindings, patients)
            if command.event == "order.placed":
                order, before = await self._place(repo, command, resolution, inbound_id, now), None
            elif command.scope is Scope.patient:
                applied.envelopes.append(
                    await self._patient(repo, record, command, resolution, inbound_id, now)
                )
                applied.audit.append(
                    self._entry(
                        record,
                        inbound_id,
                        command.event,
                        resolution.patient_id,
                        merged_patient_id=resolution.merged_patient_id,
                        bound=sorted(r.namespace for r in resolution.new_bindings),
                    )
                )
                continue
            else:
                assert resolution.order_id is not None
                current = await repo.order(resolution.order_id)
                order, before = apply_event(current, command.event, command.payload, now), current
                await repo.update_order(order)
                await repo.bind(resolution.new_bindings, order.patient_id, order.order_id, now, inbound_id)
            event = order_event(
                command.event,
                order,
                command.payload,
                source=source_of(record.partner, record.adapter),
                time=now,
            )
            applied.envelopes.append(event)
            applied.order = order
            applied.audit.append(
                self._entry(
                    record,
                    inbound_id,
                    command.event,
                    order.coi,
                    event_id=event.id,
                    order_id=order.order_id,
                    status_from=before.status.value if before else None,
                    status_to=order.status.value,
                    bound=sorted(r.namespace for r in resolution.new_bindings),
                )
            )
        return applied

    async def _place(
        self,
        repo: Repository,
        command: Command,
        resolution: Resolution,
        inbound_id: int,
        now: datetime,
    ) -> TherapyOrder:
        assert isinstance(command.payload, OrderPlaced)
        patient_id = resolution.patient_id
        if patient_id is None:
            patient_id = str(uuid.uuid4())
            await repo.save_patient(patient_id, command.patient or PatientIdentity(), now, new=True)
        known = await repo.patients([patient_id])
        carried = next((r.value for r in command.refs if r.namespace == COI_NAMESPACE), None)
        coi = carried or new_coi(self.coi_facility, now.year)
        order = TherapyOrder(
            **command.payload.order.model_dump(),
            order_id=str(uuid.uuid4()),
            coi=coi,
            patient_id=patient_id,
            patient=known[patient_id],
            created_at=now,
            updated_at=now,
        )
        await repo.insert_order(order)
        refs = list(resolution.new_bindings)
        if carried is None:
            refs.append(coi_ref(order.coi))
        await repo.bind(refs, patient_id, order.order_id, now, inbound_id)
        return order

    async def _patient(
        self,
        repo: Repository,
        record: InboundRecord,
        command: Command,
        resolution: Resolution,
        inbound_id: int,
        now: datetime,
    ) -> CloudEvent:
        assert resolution.patient_id is not None
        patient_id = resolution.patient_id
        known = (await repo.patients([patient_id]))[patient_id]
        payload = command.payload
        if isinstance(payload, PatientUpdated):
            await repo.save_patient(patient_id, known.merged_with(payload.patient), now, new=False)
        elif isinstance(payload, PatientMerged):
            if resolution.merged_patient_id:
                await repo.merge_patient(
                    resolution.merged_patient_id, into=patient_id, identity=known, at=now
                )
            payload = payload.model_copy(update={"merged_patient_id": resolution.merged_patient_id})
        else:
            raise UnsupportedMessage(f"{command.event} is not taken by this intake")
        await repo.bind(resolution.new_bindings, patient_id, None, now, inbound_id)
        cois = tuple(o.coi for o in await repo.orders_of_patient(patient_id))
        data = {**payload.model_dump(exclude_none=True), "patient_id": patient_id, "cois": cois}
        return envelope(
            command.event,
            data,
            source=source_of(record.partner, record.adapter),
            subject=None,
            time=now,
        )

    # -- quarantine -------------------------------------------------------------------------
    async def _quarantine(
        self,
        repo: Repository,
        record: InboundRecord,
        commands: list[Command],
        inbound_id: int,
        exc: IdentityProblem,
        now: datetime,
    ) -> tuple[_Applied, Outcome]:
        quarantine_id = str(uuid.uuid4())
        await repo.add_quarantine(
            quarantine_id,
            inbound_id,
            record.partner,
            exc.reason.value,
            exc.detail,
            [c.model_dump(mode="json") for c in commands],
            now,
        )
        refs = [r for c in commands for r in c.refs]
        bindings = await repo.bindings(refs)
        cois = sorted({r.value for r in refs if r.namespace == COI_NAMESPACE and r in bindings})
        notice = IdentityMismatch(
            quarantine_id=quarantine_id,
            reason=exc.reason.value,
            partner=record.partner,
            namespaces=tuple(sorted({r.namespace for r in refs})),
            candidate_cois=tuple(cois),
            occurred_at=now,
        )
        event = envelope(
            "identity.mismatch",
            notice.model_dump(),
            source=source_of(record.partner, record.adapter),
            subject=cois[0] if len(cois) == 1 else None,
            time=now,
        )
        applied = _Applied(envelopes=[event])
        applied.audit.append(
            self._entry(
                record,
                inbound_id,
                "message.quarantined",
                None,
                quarantine_id=quarantine_id,
                reason=exc.reason.value,
                why=exc.detail,
                event_id=event.id,
            )
        )
        outcome = Outcome.of_error("quarantined", exc, inbound_id, record.partner, record.message_id)
        return applied, outcome.model_copy(update={"event_ids": (event.id,)})

    @staticmethod
    def _entry(
        record: InboundRecord, inbound_id: int, action: str, subject: str | None, **detail: Any
    ) -> AuditEntry:
        detail = {k: v for k, v in detail.items() if v is not None}
        detail.update(inbound_id=inbound_id, adapter=record.adapter, transport=record.transport)
        return AuditEntry(actor=f"partner:{record.partner}", action=action, subject=subject, detail=detail)


def _decoded(decode: Decode) -> list[Command]:
    """Run the adapter's pure mapping; whatever goes wrong there is the message's fault or the
    adapter's, never a reason to lose the message."""
    try:
        return decode()
    except GatewayError:
        raise
    except ValidationError as exc:
        errors = exc.errors()
        where = "/".join(str(p) for p in errors[0]["loc"]) if errors else ""
        raise ContractViolation(
            f"the message breaks the canonical contract at {where or 'the top'}",
            detail=errors[0]["msg"] if errors else exc.title,
            location=where or None,
        ) from exc
    except Exception as exc:  # an adapter bug: keep the message, answer with an error
        log.exception("adapter failed to map a message")
        raise MappingError(detail=f"adapter error {type(exc).__name__}") from exc


def failed_decode(exc: GatewayError) -> Decode:
    """A decode step for a message that could not even be parsed: it is still stored."""

    def decode() -> list[Command]:
        raise exc

    return decode
