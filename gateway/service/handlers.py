"""Applying a message's commands: reconcile each against the crosswalk, then hand it to its handler.

Handlers sit in a table keyed by the command's event name; an event without its own handler is
handled by its scope's (every order event moves its order through the lifecycle). Each returns
what it did: the event to publish and its audit entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gateway.audit import AuditEntry
from gateway.canonical.apply import apply_event
from gateway.canonical.catalogue import Scope
from gateway.canonical.command import Command
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.events import envelope, order_event, source_of
from gateway.canonical.ids import COI_NAMESPACE, coi_ref, new_coi
from gateway.canonical.lifecycle import TERMINAL
from gateway.canonical.order import PatientIdentity, TherapyOrder
from gateway.canonical.payloads import (
    OrderPlaced,
    PatientChanged,
    PatientMerged,
    PatientsMerged,
    PatientUpdated,
)
from gateway.errors import IdentityProblem, UnsupportedMessage
from gateway.identity import Resolution, reconcile
from gateway.identity.authorise import check_patient, check_sender
from gateway.identity.reconcile import review_identity_change
from gateway.service import risk
from gateway.service.auditing import entry
from gateway.service.clocks import move_clocks
from gateway.service.effects import Context, Effect
from gateway.service.mes_rules import check_release
from gateway.service.readings import report_readings
from gateway.service.receipt import check_receipt, escalated


@dataclass
class Applied:
    envelopes: list[CloudEvent] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    order: TherapyOrder | None = None
    order_ids: list[str | None] = field(default_factory=list)  # each envelope's order


Handler = Callable[[Context, Command, Resolution, dict[str, PatientIdentity]], Effect]


def apply_all(ctx: Context, commands: list[Command]) -> Applied:
    """Reconcile and apply each command in turn; the first problem raises (and nothing is kept)."""
    applied = Applied()
    for command in commands:
        check_sender(ctx.sender, command)
        bindings = ctx.uow.bindings(command.refs)
        for order_id in sorted({b.order_id for b in bindings.values() if b.order_id}):
            ctx.authority.check_named(ctx.sender, ctx.uow.order(order_id), command)
        wanted = {b.patient_id for b in bindings.values()} if wants_patients(command) else ()
        patients = ctx.uow.patients(wanted)
        # Released despite disagreeing demographics: reconciled as if it claimed none.
        waived = "demographic_mismatch" in ctx.waived and command.patient is not None
        try:
            resolution = reconcile(
                command.model_copy(update={"patient": None}) if waived else command, bindings, patients
            )
        except IdentityProblem as exc:
            raise escalated(ctx, command, bindings, exc) from exc  # a receipt's is critical
        effect = handler_for(command)(ctx, command, resolution, patients)
        applied.envelopes.append(effect.event)
        applied.audit.append(effect.entry)
        applied.order_ids.append(effect.order.order_id if effect.order else None)
        for event, audit in effect.derived:
            applied.envelopes.append(event)
            applied.audit.append(audit)
            applied.order_ids.append(effect.order.order_id if effect.order else None)
        if effect.order:
            applied.order = effect.order
    return applied


def wants_patients(command: Command) -> bool:
    """Demographics are read only where they are checked or needed."""
    return command.patient is not None or command.scope is Scope.patient or command.event == "order.placed"


def handler_for(command: Command) -> Handler:
    return HANDLERS.get(command.event) or BY_SCOPE.get(command.scope, unsupported)


# -- orders -------------------------------------------------------------------------------------
def place_order(
    ctx: Context, command: Command, resolution: Resolution, patients: dict[str, PatientIdentity]
) -> Effect:
    assert isinstance(command.payload, OrderPlaced)
    uow, now = ctx.uow, ctx.now
    known = resolution.patient_id
    patient_id = known or str(uuid.uuid4())
    identity = patients[known] if known else (command.patient or PatientIdentity())
    carried = next((r.value for r in command.refs if r.namespace == COI_NAMESPACE), None)
    order = TherapyOrder(
        **command.payload.order.model_dump(),
        order_id=str(uuid.uuid4()),
        coi=carried or new_coi(ctx.coi_facility, now.year),
        patient_id=patient_id,
        patient=identity,
        created_at=now,
        updated_at=now,
    )
    if known is None:
        uow.insert_patient(patient_id, identity, now)
    uow.insert_order(order)
    refs = list(resolution.new_bindings)
    if carried is None:
        refs.append(coi_ref(order.coi))
    uow.bind(refs, patient_id, order.order_id, now, ctx.inbound_id)
    return _order_effect(ctx, command, resolution, order, None)


def advance_order(
    ctx: Context, command: Command, resolution: Resolution, patients: dict[str, PatientIdentity]
) -> Effect:
    """Any other order event: the order's lifecycle takes it, or refuses it."""
    assert resolution.order_id is not None
    before = ctx.uow.order(resolution.order_id)
    ctx.authority.check_order(ctx.sender, before, command)
    order = apply_event(before, command.event, command.payload, ctx.now)
    at_risk = risk.news(order, ctx.manufacturing.risk, ctx.now)
    if at_risk is not None:
        order = risk.remembered(order, at_risk)
    ctx.uow.update_order(order)
    move_clocks(ctx.uow.cold_chain, ctx.cold_chain, command, order, ctx.now)
    ctx.uow.bind(resolution.new_bindings, order.patient_id, order.order_id, ctx.now, ctx.inbound_id)
    effect = _order_effect(ctx, command, resolution, order, before)
    if at_risk is None:
        return effect
    notice = risk.notice(ctx.record, ctx.inbound_id, ctx.now, order, at_risk)
    return replace(effect, derived=(*effect.derived, notice))


Check = Callable[[Context, Command, TherapyOrder], None]


def guarded(check: Check) -> Handler:
    """An order event with a rule of its own, checked on the order it resolved to (by a sender
    that is a party to it) before the lifecycle takes it."""

    def handle(
        ctx: Context, command: Command, resolution: Resolution, patients: dict[str, PatientIdentity]
    ) -> Effect:
        assert resolution.order_id is not None
        order = ctx.uow.order(resolution.order_id)
        ctx.authority.check_order(ctx.sender, order, command)
        check(ctx, command, order)
        return advance_order(ctx, command, resolution, patients)

    return handle


def _order_effect(
    ctx: Context, command: Command, resolution: Resolution, order: TherapyOrder, before: TherapyOrder | None
) -> Effect:
    record = ctx.record
    event = order_event(
        command.event, order, command.payload, source=source_of(record.partner, record.adapter), time=ctx.now
    )
    audit = entry(
        record,
        ctx.inbound_id,
        command.event,
        order.coi,
        event_id=event.id,
        order_id=order.order_id,
        status_from=before.status.value if before else None,
        status_to=order.status.value,
        bound=sorted(r.namespace for r in resolution.new_bindings),
    )
    return Effect(event, audit, order)


# -- patients -----------------------------------------------------------------------------------
def update_patient(
    ctx: Context, command: Command, resolution: Resolution, patients: dict[str, PatientIdentity]
) -> Effect:
    assert isinstance(command.payload, PatientUpdated)
    patient_id = _checked_patient(ctx, command, resolution, patients)
    ctx.uow.update_patient(patient_id, patients[patient_id].merged_with(command.payload.patient), ctx.now)
    given = command.payload.patient.model_dump(exclude_none=True)
    # Published to every kind of partner: which demographics changed, never their values.
    changed = PatientChanged(occurred_at=command.payload.occurred_at, changed=tuple(sorted(given)))
    return _patient_effect(ctx, command, resolution, changed.model_dump(exclude_none=True))


def merge_patients(
    ctx: Context, command: Command, resolution: Resolution, patients: dict[str, PatientIdentity]
) -> Effect:
    assert isinstance(command.payload, PatientMerged)
    patient_id = _checked_patient(ctx, command, resolution, patients)
    if resolution.merged_patient_id:
        ctx.uow.merge_patient(
            resolution.merged_patient_id, into=patient_id, identity=patients[patient_id], at=ctx.now
        )
    # Published to every kind of partner: the prior record's identifiers by namespace only.
    merged = PatientsMerged(
        occurred_at=command.payload.occurred_at,
        prior_namespaces=tuple(sorted({r.namespace for r in command.payload.prior})),
        merged_patient_id=resolution.merged_patient_id,
    )
    return _patient_effect(ctx, command, resolution, merged.model_dump(exclude_none=True))


def _checked_patient(
    ctx: Context, command: Command, resolution: Resolution, patients: dict[str, PatientIdentity]
) -> str:
    """The sender may act on every order of the patients involved, and a change of who an open
    order's patient is waits for a person."""
    involved = [p for p in (resolution.patient_id, resolution.merged_patient_id) if p]
    orders = {p: ctx.uow.orders_of_patient(p) for p in involved}
    for patient_id in involved:
        check_patient(ctx.sender, orders[patient_id], command)
    open_order = any(o.status not in TERMINAL for of in orders.values() for o in of)
    try:
        review_identity_change(command, resolution, patients, open_order=open_order)
    except IdentityProblem as exc:
        if exc.reason.value not in ctx.waived:
            raise
    assert resolution.patient_id is not None
    return resolution.patient_id


def _patient_effect(
    ctx: Context, command: Command, resolution: Resolution, payload: dict[str, object]
) -> Effect:
    assert resolution.patient_id is not None
    patient_id, record = resolution.patient_id, ctx.record
    ctx.uow.bind(resolution.new_bindings, patient_id, None, ctx.now, ctx.inbound_id)
    cois = tuple(o.coi for o in ctx.uow.orders_of_patient(patient_id))
    data = {**payload, "patient_id": patient_id, "cois": cois}
    event = envelope(
        command.event, data, source=source_of(record.partner, record.adapter), subject=None, time=ctx.now
    )
    audit = entry(
        record,
        ctx.inbound_id,
        command.event,
        patient_id,
        merged_patient_id=resolution.merged_patient_id,
        bound=sorted(r.namespace for r in resolution.new_bindings),
    )
    return Effect(event, audit)


def unsupported(
    ctx: Context, command: Command, resolution: Resolution, patients: dict[str, PatientIdentity]
) -> Effect:
    raise UnsupportedMessage(f"{command.event} is not taken by this intake")


HANDLERS: dict[str, Handler] = {
    "order.placed": place_order,
    "manufacturing.material_received": guarded(check_receipt),
    "manufacturing.released": guarded(check_release),
    "patient.updated": update_patient,
    "patient.merged": merge_patients,
}
BY_SCOPE: dict[Scope, Handler] = {Scope.order: advance_order}

HANDLERS["shipment.readings_reported"] = report_readings
