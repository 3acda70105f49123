"""One inbound message, one transaction: idempotency -> reconcile -> apply -> audit -> outbox.

Only after `receive` returns has the message been durably stored; only then may the caller
acknowledge it. Nothing of a quarantined or rejected message is applied, and its raw bytes stay.
The transaction runs synchronously on the database's writer thread (see gateway.store.db), and
messages that arrive while one is running are committed together in the next (group commit):
each still gets its own outcome, and one message's defect or conflict never touches another's.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import AuditEntry, append
from gateway.canonical.apply import apply_event
from gateway.canonical.catalogue import Scope
from gateway.canonical.command import Command
from gateway.canonical.envelope import CloudEvent, utcnow
from gateway.canonical.events import envelope, order_event, source_of
from gateway.canonical.ids import COI_NAMESPACE, coi_ref, new_coi
from gateway.canonical.lifecycle import TERMINAL
from gateway.canonical.order import PatientIdentity, TherapyOrder
from gateway.canonical.payloads import IdentityMismatch, OrderPlaced, PatientMerged, PatientUpdated
from gateway.errors import (
    ContractViolation,
    DuplicateKey,
    GatewayError,
    IdentityProblem,
    MappingError,
    NotOurs,
    TransientError,
    UnsupportedMessage,
)
from gateway.identity import Resolution, reconcile
from gateway.identity.authorise import Authority, check_patient, check_sender
from gateway.identity.reconcile import review_identity_change
from gateway.outcome import Outcome
from gateway.service.recent import RecentFailures
from gateway.store.db import writer_for
from gateway.store.repository import InboundRecord, PendingWrites, Repository, StoredAnswer

log = logging.getLogger(__name__)

Decode = Callable[[], list[Command]]
Render = Callable[[Outcome], bytes]
ATTEMPTS = 3


@dataclass
class _Result:
    """What processing produced, written after the inbound row in the same transaction."""

    outcome: Outcome
    envelopes: list[CloudEvent] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    quarantine: dict[str, Any] | None = None


@dataclass
class _Applied:
    envelopes: list[CloudEvent] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    order: TherapyOrder | None = None
    order_ids: list[str | None] = field(default_factory=list)  # each envelope's order


@dataclass
class _Job:
    record: InboundRecord
    decode: Decode
    render: Render | None
    future: asyncio.Future[tuple[Outcome, bytes | None]]


class _SplitBatch(Exception):
    """A batch met a conflict or a defect: commit its messages one by one instead."""


class Intake:
    """The service: turns decoded inbound messages into committed state and outbox rows."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        coi_facility: str,
        authority: Authority,
        on_commit: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_batch: int = 64,
        log_phi: bool = False,
    ) -> None:
        self.writer = writer_for(engine)
        self.coi_facility = coi_facility
        self.authority = authority
        self.on_commit = on_commit or (lambda: None)
        self.clock = clock
        self.max_batch = max_batch
        self.log_phi = log_phi
        self._queue: list[_Job] = []
        self._flushing = 0  # flush tasks running; counted here, not by their done callbacks
        self._flushers: set[asyncio.Task[None]] = set()
        self.recent = RecentFailures()  # messages it could not commit, or failed on, for /health

    async def receive(
        self, record: InboundRecord, decode: Decode, render: Render | None = None
    ) -> tuple[Outcome, bytes | None]:
        """Process one message; returns, after its commit, its outcome and the rendered answer."""
        job = _Job(record, decode, render, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        if self._flushing < self.writer.concurrency:
            self._flushing += 1
            task = asyncio.create_task(self._flush())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        try:
            result = await job.future
        except Exception:
            self.recent.record(failed=True)
            raise
        self.recent.record(failed=result[0].error == "InternalError")
        return result

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                try:
                    await self._commit(batch)
                except Exception as exc:  # never leave a sender waiting forever
                    for job in batch:
                        if not job.future.done():
                            job.future.set_exception(exc)
        finally:
            # In the same step as the empty-queue check: a job queued after it starts a new flush.
            self._flushing -= 1

    async def _commit(self, batch: list[_Job]) -> None:
        if len(batch) > 1:
            try:
                results = await self.writer.run(partial(self._transaction, batch, split_on_error=True))
            except _SplitBatch:
                for job in batch:
                    try:
                        await self._commit([job])
                    except Exception as exc:  # this message's own error, and no other's
                        if not job.future.done():
                            job.future.set_exception(exc)
                return
        else:
            results = [await self._alone(batch[0])]
        self.on_commit()
        for job, result in zip(batch, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    async def _alone(self, job: _Job) -> tuple[Outcome, bytes | None]:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return (await self.writer.run(partial(self._transaction, [job], split_on_error=False)))[0]
            except IntegrityError as exc:
                # A concurrent transaction bound the same identifier or moved the same order
                # first: run again, and reconciliation sees what it did.
                log.info("intake retry %d after a concurrent change", attempt)
                if attempt == ATTEMPTS:
                    raise TransientError(detail=f"concurrent change: {type(exc).__name__}") from exc
            except DBAPIError as exc:
                raise TransientError(detail=f"database: {type(exc.orig).__name__}") from exc
            except (GatewayError, AssertionError):
                raise
            except Exception as exc:  # a defect of ours: keep the message, answer with an error
                self._log_defect("intake failed on a message from %s", job.record.partner)
                defect = type(exc).__name__
                return await self.writer.run(partial(self._store_failure, job.record, defect, job.render))
        raise AssertionError("unreachable")

    def _transaction(self, batch: list[_Job], *, split_on_error: bool) -> list[tuple[Outcome, bytes | None]]:
        try:
            with self.writer.engine.begin() as conn:
                repo = Repository(conn)
                with self.writer.pipelined(conn):
                    results = self._in_transaction(conn, repo, batch)
                repo.settle()
                return results
        except Exception as exc:
            # Whatever one message of a batch met (a conflict, a transient error, a defect) is
            # that message's alone: the batch is rolled back and its messages go one by one.
            if split_on_error:
                raise _SplitBatch from exc
            raise

    def _in_transaction(
        self, conn: Connection, repo: Repository, batch: list[_Job]
    ) -> list[tuple[Outcome, bytes | None]]:
        writes, audit = PendingWrites(), []
        now = self.clock()
        decoded = self._prepare(repo, batch)
        answered: dict[tuple[str, str], StoredAnswer] = {}  # keys claimed earlier in this batch
        results: list[tuple[Outcome, bytes | None]] = []
        for job in batch:
            record = job.record
            key = (record.partner, record.message_id) if record.message_id else None
            first = (answered.get(key) or repo.previous_answer(*key)) if key else None
            if first is not None and first.content_hash in (None, record.content_hash):
                repeat = Outcome.model_validate(first.outcome).model_copy(update={"duplicate": True})
                results.append((repeat, first.rendered))
                continue
            if isinstance(nothing := decoded[id(job)], NotOurs):
                # Found out only while mapping: still nothing of it is stored, nor its answer.
                outcome = Outcome(
                    status="ignored",
                    inbound_id=None,
                    partner=record.partner,
                    message_id=record.message_id,
                    reason=nothing.public_message,
                    code=nothing.reason,
                    http_status=nothing.http_status,
                )
                results.append((outcome, job.render(outcome) if job.render else None))
                continue
            inbound_id = str(uuid.uuid4())
            if first is not None:  # the id names another message: this one is kept and refused
                decoded[id(job)] = DuplicateKey(
                    detail=f"the id was first used by inbound {first.outcome['inbound_id']}"
                )
            result = self._process(conn, repo, record, decoded[id(job)], inbound_id, now)
            outcome = result.outcome
            writes.message(inbound_id, record, outcome.status, outcome.error, outcome.order_id)
            if result.quarantine:
                writes.quarantined(**result.quarantine)
            # each event on its own order's timeline: a message may touch several orders
            order_ids = outcome.order_ids or (outcome.order_id,) * len(result.envelopes)
            for envelope_, order_id in zip(result.envelopes, order_ids, strict=True):
                writes.events([envelope_], order_id, inbound_id)
            audit.extend(result.audit)
            rendered = job.render(outcome) if job.render else None
            if key and outcome.status != "rejected":  # a refused message leaves its id free
                answer = StoredAnswer(outcome.model_dump(mode="json"), rendered, record.content_hash)
                writes.answer(record, inbound_id, answer)
                answered[key] = answer
            results.append((outcome, rendered))
        repo.write_pending()
        writes.flush(conn)
        append(conn, audit, now)
        return results

    def _prepare(self, repo: Repository, batch: list[_Job]) -> dict[int, list[Command] | GatewayError]:
        """Before the batch's messages are applied one by one: map every message, and read what
        the batch will ask (answers of repeats, crosswalk rows, orders, patients) all at once."""
        decoded: dict[int, list[Command] | GatewayError] = {}
        for job in batch:
            try:
                decoded[id(job)] = self._decoded(job.decode)
            except GatewayError as exc:
                decoded[id(job)] = exc
        commands = [c for d in decoded.values() if isinstance(d, list) for c in d]
        repo.load_batch(
            ((j.record.partner, j.record.message_id) for j in batch if j.record.message_id),
            (r for c in commands for r in c.refs),
            patients=any(map(_wants_patients, commands)),
        )
        return decoded

    def _process(
        self,
        conn: Connection,
        repo: Repository,
        record: InboundRecord,
        decoded: list[Command] | GatewayError,
        inbound_id: str,
        now: datetime,
    ) -> _Result:
        commands: list[Command] = []
        try:
            if isinstance(decoded, GatewayError):
                raise decoded
            commands = decoded
            if len(commands) == 1:
                # One command raises any identity or lifecycle problem before it writes: no
                # savepoint needed. Several must be applied whole or not at all.
                applied = self._apply_all(repo, record, commands, inbound_id, now)
            else:
                repo.write_pending()  # what earlier messages changed stays outside the savepoint
                try:
                    with conn.begin_nested():
                        applied = self._apply_all(repo, record, commands, inbound_id, now)
                        repo.write_pending()
                except Exception:
                    repo.forget()  # what the rolled-back commands wrote is not there any more
                    raise
        except IdentityProblem as exc:
            return self._quarantine(repo, record, commands, inbound_id, exc, now)
        except TransientError:
            raise
        except GatewayError as exc:  # rejected: malformed, unmappable, illegal, not permitted
            outcome = Outcome.of_error("rejected", exc, inbound_id, record.partner, record.message_id)
            entry = self._entry(
                record, inbound_id, "message.rejected", None, error=type(exc).__name__, reason=exc.detail
            )
            return _Result(outcome, audit=[entry])
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
        return _Result(outcome, applied.envelopes, applied.audit)

    def _store_failure(
        self, record: InboundRecord, defect: str, render: Render | None
    ) -> tuple[Outcome, bytes | None]:
        """After a defect rolled the transaction back: keep the raw message, not its answer (a
        resend may succeed once the defect is fixed)."""
        inbound_id, now = str(uuid.uuid4()), self.clock()
        outcome = Outcome(
            status="rejected",
            inbound_id=inbound_id,
            partner=record.partner,
            message_id=record.message_id,
            error="InternalError",
            reason="the gateway failed to process the message; it is kept",
            code="207",
            http_status=500,
        )
        with self.writer.engine.begin() as conn:
            writes = PendingWrites()
            writes.message(inbound_id, record, "rejected", "InternalError", None)
            writes.flush(conn)
            append(conn, [self._entry(record, inbound_id, "message.failed", None, error=defect)], now)
        try:
            return outcome, render(outcome) if render else None
        except Exception:  # the dialect's renderer is what failed: answer without it
            self._log_defect("could not render the error answer for %s", record.partner)
            return outcome, None

    # -- applying ---------------------------------------------------------------------------
    def _apply_all(
        self, repo: Repository, record: InboundRecord, commands: list[Command], inbound_id: str, now: datetime
    ) -> _Applied:
        applied = _Applied()
        sender = self.authority.sender(record.partner)
        for command in commands:
            check_sender(sender, command)
            bindings = repo.bindings(command.refs)
            wanted = {b.patient_id for b in bindings.values()} if _wants_patients(command) else ()
            patients = repo.patients(wanted)
            resolution = reconcile(command, bindings, patients)
            if command.scope is Scope.patient:
                involved = [p for p in (resolution.patient_id, resolution.merged_patient_id) if p]
                orders = {p: repo.orders_of_patient(p) for p in involved}
                for patient_id in involved:
                    check_patient(sender, orders[patient_id], command)
                open_order = any(o.status not in TERMINAL for of in orders.values() for o in of)
                review_identity_change(command, resolution, patients, open_order=open_order)
                applied.envelopes.append(
                    self._patient(repo, record, command, resolution, patients, inbound_id, now)
                )
                applied.order_ids.append(None)
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
            if command.event == "order.placed":
                order, before = self._place(repo, command, resolution, patients, inbound_id, now), None
            else:
                assert resolution.order_id is not None
                before = repo.order(resolution.order_id)
                self.authority.check_order(sender, before, command)
                order = apply_event(before, command.event, command.payload, now)
                repo.update_order(order)
                repo.bind(resolution.new_bindings, order.patient_id, order.order_id, now, inbound_id)
            event = order_event(
                command.event,
                order,
                command.payload,
                source=source_of(record.partner, record.adapter),
                time=now,
            )
            applied.envelopes.append(event)
            applied.order_ids.append(order.order_id)
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

    def _place(
        self,
        repo: Repository,
        command: Command,
        resolution: Resolution,
        patients: dict[str, PatientIdentity],
        inbound_id: str,
        now: datetime,
    ) -> TherapyOrder:
        assert isinstance(command.payload, OrderPlaced)
        known = resolution.patient_id
        patient_id = known or str(uuid.uuid4())
        identity = patients[known] if known else (command.patient or PatientIdentity())
        carried = next((r.value for r in command.refs if r.namespace == COI_NAMESPACE), None)
        order = TherapyOrder(
            **command.payload.order.model_dump(),
            order_id=str(uuid.uuid4()),
            coi=carried or new_coi(self.coi_facility, now.year),
            patient_id=patient_id,
            patient=identity,
            created_at=now,
            updated_at=now,
        )
        if known is None:
            repo.insert_patient(patient_id, identity, now)
        repo.insert_order(order)
        refs = list(resolution.new_bindings)
        if carried is None:
            refs.append(coi_ref(order.coi))
        repo.bind(refs, patient_id, order.order_id, now, inbound_id)
        return order

    def _patient(
        self,
        repo: Repository,
        record: InboundRecord,
        command: Command,
        resolution: Resolution,
        patients: dict[str, PatientIdentity],
        inbound_id: str,
        now: datetime,
    ) -> CloudEvent:
        assert resolution.patient_id is not None
        patient_id = resolution.patient_id
        known = patients[patient_id]
        payload = command.payload
        if isinstance(payload, PatientUpdated):
            repo.update_patient(patient_id, known.merged_with(payload.patient), now)
        elif isinstance(payload, PatientMerged):
            if resolution.merged_patient_id:
                repo.merge_patient(resolution.merged_patient_id, into=patient_id, identity=known, at=now)
            payload = payload.model_copy(update={"merged_patient_id": resolution.merged_patient_id})
        else:
            raise UnsupportedMessage(f"{command.event} is not taken by this intake")
        repo.bind(resolution.new_bindings, patient_id, None, now, inbound_id)
        cois = tuple(o.coi for o in repo.orders_of_patient(patient_id))
        data = {**payload.model_dump(exclude_none=True), "patient_id": patient_id, "cois": cois}
        return envelope(
            command.event, data, source=source_of(record.partner, record.adapter), subject=None, time=now
        )

    # -- quarantine -------------------------------------------------------------------------
    def _quarantine(
        self,
        repo: Repository,
        record: InboundRecord,
        commands: list[Command],
        inbound_id: str,
        exc: IdentityProblem,
        now: datetime,
    ) -> _Result:
        quarantine_id = str(uuid.uuid4())
        refs = [r for c in commands for r in c.refs]
        bindings = repo.bindings(refs)
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
        entry = self._entry(
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
        return _Result(outcome.model_copy(update={"event_ids": (event.id,)}), [event], [entry], row)

    def _decoded(self, decode: Decode) -> list[Command]:
        """Run the adapter's pure mapping; whatever goes wrong there is the message's fault or the
        adapter's, never a reason to lose the message."""
        try:
            return decode()
        except GatewayError:
            raise
        except Exception as exc:
            raise mapping_failure(exc, log_phi=self.log_phi) from exc

    def _log_defect(self, message: str, *args: object) -> None:
        """A defect's traceback, which may quote the payload, only when patient data may be logged."""
        log.error(message, *args, exc_info=self.log_phi)

    @staticmethod
    def _entry(
        record: InboundRecord, inbound_id: str, action: str, subject: str | None, **detail: Any
    ) -> AuditEntry:
        detail = {k: v for k, v in detail.items() if v is not None}
        detail.update(inbound_id=inbound_id, adapter=record.adapter, transport=record.transport)
        return AuditEntry(actor=f"partner:{record.partner}", action=action, subject=subject, detail=detail)


def _wants_patients(command: Command) -> bool:
    """Demographics are read only where they are checked or needed."""
    return command.patient is not None or command.scope is Scope.patient or command.event == "order.placed"


def mapping_failure(exc: Exception, *, log_phi: bool = False) -> GatewayError:
    """What an adapter's mapping raised, as the error the message is answered with: data that
    breaks the canonical contract, or (a defect of the adapter's) a mapping error; kept either way."""
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        where = "/".join(str(p) for p in errors[0]["loc"]) if errors else ""
        return ContractViolation(
            f"the message breaks the canonical contract at {where or 'the top'}",
            detail=errors[0]["msg"] if errors else exc.title,
            location=where or None,
        )
    # A defect's traceback may quote the payload: only when patient data may be logged.
    log.error("adapter failed to map a message (%s)", type(exc).__name__, exc_info=log_phi)
    return MappingError(detail=f"adapter error {type(exc).__name__}")


def failed_decode(exc: GatewayError) -> Decode:
    """A decode step for a message that could not even be parsed: it is still stored."""

    def decode() -> list[Command]:
        raise exc

    return decode
