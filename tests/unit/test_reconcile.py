"""Reconciliation is pure: bindings and demographics in, a resolution or a typed problem out."""

from datetime import date

import pytest

from gateway.canonical.ids import ExternalRef
from gateway.canonical.order import PatientIdentity
from gateway.errors import AlreadyBound, ConflictingIdentities, DemographicMismatch, UnknownIdentity
from gateway.identity import Binding, reconcile
from tests.support.builders import coi, event, mrn, place, placer

PATIENT = PatientIdentity(family_name="Testpatient", given_name="Alpha", birth_date=date(1970, 1, 1))
TRACKING = ExternalRef(namespace="courier:demo-courier:tracking", value="TRK1")


def test_a_new_order_for_a_new_patient_binds_every_identifier() -> None:
    command = place(1)
    resolution = reconcile(command, {}, {})
    assert resolution.order_id is None and resolution.patient_id is None
    assert set(resolution.new_bindings) == set(command.refs)


def test_a_new_order_for_a_known_patient_reuses_the_patient() -> None:
    command = place(1)
    resolution = reconcile(command, {mrn("MRN-000001"): Binding("p1")}, {"p1": PATIENT})
    assert resolution.patient_id == "p1"
    assert resolution.new_bindings == (placer("PO-000001"),)


def test_placing_with_an_order_identifier_that_is_taken_is_quarantined() -> None:
    with pytest.raises(AlreadyBound):
        reconcile(place(1), {placer("PO-000001"): Binding("p9", "o9")}, {})


def test_placing_for_a_known_mrn_with_another_birth_date_is_quarantined() -> None:
    with pytest.raises(DemographicMismatch) as caught:
        reconcile(place(1, birth="1971-02-02"), {mrn("MRN-000001"): Binding("p1")}, {"p1": PATIENT})
    assert "birth_date" in caught.value.detail and "1971" not in caught.value.detail


def test_names_compare_normalised() -> None:
    command = place(1, family="  TESTPATIENT ")
    assert reconcile(command, {mrn("MRN-000001"): Binding("p1")}, {"p1": PATIENT}).patient_id == "p1"


def test_an_event_resolves_to_its_one_order() -> None:
    command = event("collection.scheduled", placer("PO-1"), scheduled_start="2026-11-09T08:00:00Z")
    resolution = reconcile(command, {placer("PO-1"): Binding("p1", "o1")}, {"p1": PATIENT})
    assert resolution.order_id == "o1"


def test_an_event_with_no_known_identifier_is_unknown() -> None:
    with pytest.raises(UnknownIdentity):
        reconcile(event("order.cancelled", placer("PO-404")), {}, {})


def test_a_patient_identifier_alone_never_picks_an_order() -> None:
    with pytest.raises(UnknownIdentity):
        reconcile(event("order.cancelled", mrn("MRN-1")), {mrn("MRN-1"): Binding("p1")}, {})


def test_two_identifiers_naming_two_orders_is_a_possible_mix_up() -> None:
    command = event("order.cancelled", placer("PO-1"), coi("CHA999926AAAAAA"))
    bindings = {placer("PO-1"): Binding("p1", "o1"), coi("CHA999926AAAAAA"): Binding("p2", "o2")}
    with pytest.raises(ConflictingIdentities):
        reconcile(command, bindings, {})


def test_an_mrn_of_another_patient_than_the_orders_is_a_conflict() -> None:
    command = event("order.cancelled", placer("PO-1"), mrn("MRN-2"))
    bindings = {placer("PO-1"): Binding("p1", "o1"), mrn("MRN-2"): Binding("p2")}
    with pytest.raises(ConflictingIdentities):
        reconcile(command, bindings, {})


def test_an_unknown_identifier_is_allowed_only_when_the_message_may_bind_it() -> None:
    bindings = {coi("CHA999926AAAAAA"): Binding("p1", "o1")}
    carried = event("shipment.in_transit", coi("CHA999926AAAAAA"), TRACKING, shipment_id="S1")
    with pytest.raises(UnknownIdentity):
        reconcile(carried, bindings, {})
    booking = event(
        "shipment.in_transit", coi("CHA999926AAAAAA"), TRACKING, binds=(TRACKING,), shipment_id="S1"
    )
    assert reconcile(booking, bindings, {}).new_bindings == (TRACKING,)


def test_demographics_carried_by_an_event_must_agree() -> None:
    command = event("order.cancelled", placer("PO-1")).model_copy(
        update={"patient": PatientIdentity(family_name="Otherpatient")}
    )
    with pytest.raises(DemographicMismatch):
        reconcile(command, {placer("PO-1"): Binding("p1", "o1")}, {"p1": PATIENT})


def test_patient_updates_need_a_known_patient() -> None:
    update = event("patient.updated", mrn("MRN-1"), patient={"family_name": "Newname"})
    with pytest.raises(UnknownIdentity):
        reconcile(update, {}, {})
    assert reconcile(update, {mrn("MRN-1"): Binding("p1")}, {"p1": PATIENT}).patient_id == "p1"
