"""Reconciliation (DESIGN §5), a pure function: does this message belong to exactly one order?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.canonical.catalogue import Scope
from gateway.canonical.command import Command
from gateway.canonical.ids import ExternalRef, IdentifierScope
from gateway.canonical.order import PatientIdentity
from gateway.canonical.payloads import PatientMerged, PatientUpdated
from gateway.errors import (
    AlreadyBound,
    ConflictingIdentities,
    DemographicMismatch,
    DisagreeingMerge,
    IdentityChange,
    UnknownIdentity,
)


@dataclass(frozen=True)
class Binding:
    """Where the crosswalk points one identifier: a patient, and for order identifiers an order."""

    patient_id: str
    order_id: str | None = None


@dataclass(frozen=True)
class Resolution:
    """The message reconciles: apply it to `order_id` (None when it places a new order)."""

    patient_id: str | None
    order_id: str | None
    new_bindings: tuple[ExternalRef, ...]
    merged_patient_id: str | None = None  # a merge: the record folded into `patient_id`


def _names(refs: list[ExternalRef]) -> str:
    return ", ".join(sorted({r.namespace for r in refs}))


def _one_patient(command: Command, bindings: Mapping[ExternalRef, Binding]) -> str | None:
    patients = {bindings[r].patient_id for r in command.refs if r in bindings}
    if len(patients) > 1:
        raise ConflictingIdentities(detail=f"identifiers name {len(patients)} patients")
    return next(iter(patients), None)


def _check_demographics(
    command: Command, patient_id: str | None, patients: Mapping[str, PatientIdentity]
) -> None:
    known = patients.get(patient_id) if patient_id else None
    if command.patient is None or known is None:
        return
    fields = command.patient.disagreements(known)
    if fields:
        raise DemographicMismatch(detail="disagreeing fields: " + ", ".join(fields))


def _unresolved_must_be_bindable(
    command: Command, bindings: Mapping[ExternalRef, Binding]
) -> tuple[ExternalRef, ...]:
    unresolved = [r for r in command.refs if r not in bindings]
    unexpected = [r for r in unresolved if r not in command.binds]
    if unexpected:
        raise UnknownIdentity(detail=f"unknown identifiers: {_names(unexpected)}")
    return tuple(unresolved)


def _placing(
    command: Command,
    bindings: Mapping[ExternalRef, Binding],
    patients: Mapping[str, PatientIdentity],
) -> Resolution:
    taken = [r for r in command.refs if r.scope is IdentifierScope.order and r in bindings]
    if taken:
        raise AlreadyBound(detail=f"already bound: {_names(taken)}")
    patient_id = _one_patient(command, bindings)
    _check_demographics(command, patient_id, patients)
    unresolved = tuple(r for r in command.refs if r not in bindings)
    return Resolution(patient_id=patient_id, order_id=None, new_bindings=unresolved)


def _about_patient(
    command: Command,
    bindings: Mapping[ExternalRef, Binding],
    patients: Mapping[str, PatientIdentity],
) -> Resolution:
    patient_id = _one_patient(command, bindings)
    if patient_id is None:
        raise UnknownIdentity(detail=f"no patient for: {_names(list(command.refs))}")
    _check_demographics(command, patient_id, patients)
    new = _unresolved_must_be_bindable(command, bindings)
    return Resolution(patient_id=patient_id, order_id=None, new_bindings=new)


def _about_order(
    command: Command,
    bindings: Mapping[ExternalRef, Binding],
    patients: Mapping[str, PatientIdentity],
) -> Resolution:
    orders = {
        b.order_id for r in command.refs if (b := bindings.get(r)) is not None and b.order_id is not None
    }
    if not orders:
        raise UnknownIdentity(detail=f"no order for: {_names(list(command.refs))}")
    if len(orders) > 1:
        raise ConflictingIdentities(detail=f"identifiers name {len(orders)} orders")
    patient_id = _one_patient(command, bindings)
    _check_demographics(command, patient_id, patients)
    new = _unresolved_must_be_bindable(command, bindings)
    return Resolution(patient_id=patient_id, order_id=orders.pop(), new_bindings=new)


def _merging(
    command: Command,
    bindings: Mapping[ExternalRef, Binding],
    patients: Mapping[str, PatientIdentity],
) -> Resolution:
    assert isinstance(command.payload, PatientMerged)
    prior = set(command.payload.prior)
    survivors = [r for r in command.refs if r not in prior]
    prior_ids = {bindings[r].patient_id for r in prior if r in bindings}
    surviving_ids = {bindings[r].patient_id for r in survivors if r in bindings}
    if not prior_ids and not surviving_ids:
        raise UnknownIdentity(detail=f"no patient for: {_names(list(command.refs))}")
    if len(prior_ids) > 1 or len(surviving_ids) > 1:
        raise ConflictingIdentities(detail="a merge side names more than one patient")
    keeper = next(iter(surviving_ids or prior_ids))
    folded = next(iter(prior_ids), None)
    _check_demographics(command, keeper, patients)
    new = tuple(r for r in survivors if r not in bindings)
    return Resolution(
        patient_id=keeper,
        order_id=None,
        new_bindings=new,
        merged_patient_id=folded if folded != keeper else None,
    )


def reconcile(
    command: Command,
    bindings: Mapping[ExternalRef, Binding],
    patients: Mapping[str, PatientIdentity],
) -> Resolution:
    """Resolve the command's identifiers, or raise the IdentityProblem that quarantines it.

    `bindings` holds the crosswalk entries of the command's identifiers (those not bound are
    absent); `patients` the known demographics of the patients they point to.
    """
    if command.event == "order.placed":
        return _placing(command, bindings, patients)
    if command.event == "patient.merged":
        return _merging(command, bindings, patients)
    if command.scope is Scope.patient:
        return _about_patient(command, bindings, patients)
    return _about_order(command, bindings, patients)


def review_identity_change(
    command: Command, resolution: Resolution, patients: Mapping[str, PatientIdentity], *, open_order: bool
) -> None:
    """A change of who the patient is, for a patient with an open therapy order, waits for a
    person: an update of birth date, sex or name (beyond normalisation), or a merge of two records
    whose demographics disagree. Routine updates (address, a middle initial) go through."""
    if not open_order or resolution.patient_id is None:
        return
    known = patients.get(resolution.patient_id)
    if known is None:
        return
    if isinstance(command.payload, PatientUpdated):
        changed = known.identity_changes(command.payload.patient)
        if changed:
            raise IdentityChange(detail="would change: " + ", ".join(changed))
    folded = patients.get(resolution.merged_patient_id) if resolution.merged_patient_id else None
    if folded is not None:
        changed = known.identity_changes(folded)
        if changed:
            raise DisagreeingMerge(detail="the records disagree on: " + ", ".join(changed))
