"""Payloads of the canonical events: what a message says happened, in the gateway's words."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from gateway.canonical.base import Canonical
from gateway.canonical.ids import Din, ExternalRef
from gateway.canonical.order import (
    Collection,
    Infusion,
    OrderDetails,
    Party,
    PatientIdentity,
    Product,
    Shipment,
    ShipmentDirection,
)


class Payload(Canonical):
    """Base of every payload: when it happened, as the sender says."""

    occurred_at: datetime | None = None


# -- orders ----------------------------------------------------------------------------------
class OrderPlaced(Payload):
    order: OrderDetails


class OrderChanges(Canonical):
    product: Product | None = None
    ordering_practitioner: Party | None = None
    collection: Collection | None = None
    infusion: Infusion | None = None
    notes: str | None = Field(default=None, max_length=2000)


class OrderUpdated(Payload):
    changes: OrderChanges


class WithReason(Payload):
    reason: str | None = Field(default=None, max_length=500)


class OrderAccepted(Payload):
    accepted_by: Party | None = None


# -- patients --------------------------------------------------------------------------------
class PatientUpdated(Payload):
    patient: PatientIdentity


class PatientMerged(Payload):
    """An ADT merge: `prior` are the identifiers of the record merged away (HL7 MRG-1); the
    command's other identifiers name the surviving record (PID-3)."""

    prior: tuple[ExternalRef, ...] = Field(min_length=1)
    merged_patient_id: str | None = Field(
        default=None, description="set by the gateway: the patient record that was merged away"
    )


# What is published of the two (docs/disclosure.md): every kind of partner consumes `cgt.events`,
# so a patient's event says which patient and which orders, never names, dates or MRNs.
class PatientChanged(Payload):
    """Published for `patient.updated`: the demographics that were given, by name only."""

    changed: tuple[str, ...] = ()


class PatientsMerged(Payload):
    """Published for `patient.merged`: the record merged away, by the gateway's id only, and the
    namespaces of the identifiers it was known by (no values)."""

    prior_namespaces: tuple[str, ...] = ()
    merged_patient_id: str | None = None


# -- collection and slots --------------------------------------------------------------------
class CollectionScheduled(Payload):
    scheduled_start: datetime
    site: Party | None = None


class CollectionCompleted(Payload):
    din: Din | None = None
    collected_at: datetime
    site: Party | None = None


class SlotRequested(Payload):
    manufacturer: Party
    requested_start: datetime | None = None


class SlotConfirmed(Payload):
    manufacturer: Party
    slot_id: str
    slot_start: datetime | None = None


# -- shipments -------------------------------------------------------------------------------
class ShipmentBooked(Payload):
    shipment: Shipment


class ShipmentUpdate(Payload):
    shipment_id: str = Field(min_length=1, max_length=100)
    direction: ShipmentDirection | None = Field(
        default=None, description="needed only when the shipment was not booked through the gateway"
    )
    location: str | None = Field(default=None, max_length=200)
    custodian: str | None = Field(default=None, max_length=200)
    expected_delivery: datetime | None = None
    note: str | None = Field(default=None, max_length=500)


class TemperatureExcursion(Payload):
    shipment_id: str = Field(min_length=1, max_length=100)
    temperature_c: float
    limit_c: float
    duration_s: int | None = Field(default=None, ge=0)


# -- manufacturing ---------------------------------------------------------------------------
class MaterialReceived(Payload):
    manufacturer: Party | None = None
    din: Din | None = None


class BatchEvent(Payload):
    batch_id: str = Field(min_length=1, max_length=100)


class StepCompleted(BatchEvent):
    step: str = Field(max_length=100)


class DeviationOpened(BatchEvent):
    deviation_id: str = Field(max_length=100)
    severity: str | None = Field(default=None, max_length=50)


class QcOutcome(StrEnum):
    passed = "pass"
    failed = "fail"
    pending = "pending"


class QcResult(BatchEvent):
    test: str = Field(max_length=100)
    result: QcOutcome


class ManufacturingFailed(BatchEvent):
    reason: str | None = Field(default=None, max_length=500)


# -- infusion --------------------------------------------------------------------------------
class InfusionScheduled(Payload):
    planned_at: datetime


class InfusionCompleted(Payload):
    infused_at: datetime


# -- identity --------------------------------------------------------------------------------
class IdentityMismatch(Payload):
    quarantine_id: str
    reason: str
    partner: str
    namespaces: tuple[str, ...] = Field(description="namespaces of the identifiers carried; no values")
    candidate_cois: tuple[str, ...] = ()


class IdentityResolved(Payload):
    quarantine_id: str
    decision: str


# -- the gateway's own deliveries -------------------------------------------------------------
class DeliveryFailed(Payload):
    """An outbound delivery the gateway gave up on after its retries; it waits in `cgt.dead`."""

    partner: str
    adapter: str
    event_id: str = Field(description="the canonical event that could not be delivered")
    attempts: int = Field(ge=1)
    reason: str = Field(max_length=500)


# -- the audit trail --------------------------------------------------------------------------
class AuditCheckpoint(Payload):
    """The audit chain's head, signed with a key kept outside the database (`occurred_at`: when).
    Keep these: a chain rewritten after a checkpoint no longer matches it."""

    seq: int = Field(ge=1, description="the last audit record the checkpoint covers")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="that record's chain hash")
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$", description="names the signing key, reveals nothing of it")
    signature: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 over seq, hash, time and key id"
    )
