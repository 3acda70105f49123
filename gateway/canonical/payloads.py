"""Payloads of the canonical events: what a message says happened, in the gateway's words."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator, Field, StringConstraints

from gateway.canonical.base import Canonical
from gateway.canonical.ids import Coi, Din, ExternalRef
from gateway.canonical.order import (
    Collection,
    Infusion,
    OrderDetails,
    Party,
    PatientIdentity,
    Product,
    QcOutcome,
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
    shipment_id: str = Field(
        min_length=1,
        max_length=100,
        description="the shipment's id, or any identifier the courier knows it by (tracking number, "
        "shipper SSCC, logger id)",
    )
    direction: ShipmentDirection | None = Field(
        default=None, description="needed only when the shipment was not booked through the gateway"
    )
    location: str | None = Field(default=None, max_length=200)
    custodian: str | None = Field(default=None, max_length=200, description="who holds it now")
    handed_over_by: str | None = Field(
        default=None, max_length=200, description="custody: who held it before this handoff"
    )
    signed_by: str | None = Field(default=None, max_length=200, description="who signed for it")
    carrier_code: str | None = Field(
        default=None, max_length=50, description="the courier's own status code, as sent (a string)"
    )
    expected_delivery: datetime | None = None
    note: str | None = Field(default=None, max_length=500)


class ShipmentDelayed(ShipmentUpdate):
    """Late, or about to be: a courier says so, or one of the shipment's clocks (viability window,
    dry shipper hold time, promised delivery window) passed 75 %, 90 % or its deadline."""

    clock: str | None = Field(default=None, max_length=50, description="the clock, when the gateway's")
    deadline: datetime | None = None
    elapsed_pct: int | None = Field(default=None, ge=0)
    time_left_s: int | None = Field(default=None, description="negative once the deadline passed")


class Reading(Canonical):
    """One logger reading: a point (`at`), or an interval report (`at` to `until`, min/max/mean)."""

    at: datetime
    until: datetime | None = None
    probe: str | None = Field(default=None, max_length=50)
    temperature_c: float | None = None
    min_c: float | None = None
    max_c: float | None = None
    mean_c: float | None = None
    ln2_level_pct: float | None = None
    battery_pct: float | None = None
    light: bool | None = None
    shock_g: float | None = None
    alarm: str | None = Field(default=None, max_length=50, description="the logger's own alarm")


class ShipmentReadings(Payload):
    """A batch of a logger's readings for one shipment: stored, not published one by one; the
    gateway publishes what they mean (an excursion, a logger fault, a periodic summary)."""

    shipment_id: str = Field(min_length=1, max_length=100, description="as in ShipmentUpdate")
    device_id: str = Field(min_length=1, max_length=100)
    readings: tuple[Reading, ...] = Field(min_length=1, max_length=10_000)


class TemperatureExcursion(Payload):
    shipment_id: str = Field(min_length=1, max_length=100)
    temperature_c: float = Field(description="the peak: furthest from the range")
    limit_c: float = Field(description="the limit it crossed")
    duration_s: int | None = Field(default=None, ge=0)
    temperature_class: str | None = Field(default=None, max_length=20)
    severity: str | None = Field(default=None, max_length=20, description="minor, major or critical")
    started_at: datetime | None = None
    ended_at: datetime | None = None
    device_id: str | None = Field(default=None, max_length=100)


class TemperatureSummary(Payload):
    """The periodic summary of a shipment's readings since the last one."""

    shipment_id: str = Field(min_length=1, max_length=100)
    since: datetime
    until: datetime
    readings: int = Field(ge=0)
    min_c: float | None = None
    max_c: float | None = None
    mean_c: float | None = None
    minutes_out_of_range: float = Field(default=0, ge=0)


class LoggerFault(Payload):
    shipment_id: str = Field(min_length=1, max_length=100)
    device_id: str = Field(min_length=1, max_length=100)
    fault: str = Field(max_length=50, description="battery_low, no_data, sensor_error, ...")
    detail: str | None = Field(default=None, max_length=500)


# -- manufacturing ---------------------------------------------------------------------------
# As read from the bag (spaces around it dropped): checked against the order by the gateway, which
# names what is wrong with it (gateway.identity.receipt), rather than refused here.
def _as_read(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


ScannedDin = Annotated[str, BeforeValidator(_as_read), StringConstraints(pattern=r"^=?[A-Z0-9*]{13,15}$")]


class MaterialReceived(Payload):
    """The starting material at the manufacturer: what was scanned on the bag, and how it came."""

    manufacturer: Party | None = None
    din: ScannedDin | None = Field(
        default=None,
        description="the DIN scanned on the bag, as read: 13 characters, with its check character "
        "(14) or its two flag characters (15); verified against the order's collection by the gateway",
    )
    scanned_coi: Coi | None = Field(default=None, description="the COI scanned on the bag")
    temperature_c: float | None = None
    condition: str | None = Field(default=None, max_length=50, description="intact, damaged, ...")


class BatchEvent(Payload):
    batch_id: str = Field(min_length=1, max_length=100)


class StepCompleted(BatchEvent):
    step: str = Field(max_length=100)


class DeviationOpened(BatchEvent):
    deviation_id: str = Field(max_length=100)
    severity: str | None = Field(default=None, max_length=50)


class DeviationClosed(BatchEvent):
    deviation_id: str = Field(max_length=100)
    outcome: str | None = Field(default=None, max_length=200)


class QcResult(BatchEvent):
    test: str = Field(max_length=100, description="sterility, mycoplasma, endotoxin, viability, ...")
    result: QcOutcome
    value: float | str | None = None
    unit: str | None = Field(default=None, max_length=50)
    specification: str | None = Field(default=None, max_length=200)


class Released(BatchEvent):
    certificate_of_analysis: str | None = Field(default=None, max_length=200, description="its reference")


class ManufacturingFailed(BatchEvent):
    reason: str | None = Field(default=None, max_length=500)


class ProductShipped(BatchEvent):
    """The MES says the product left: the outbound leg's courier speaks of it from here on."""

    shipment_id: str | None = Field(default=None, max_length=100)
    courier: str | None = Field(default=None, max_length=100)


class AtRisk(Payload):
    """The order may miss its infusion: projected release plus transit passes the planned infusion
    less the margin. Published by the gateway; re-evaluated when any of those dates move."""

    projected_release: datetime | None = None
    projected_delivery: datetime | None = None
    planned_infusion: datetime | None = None
    margin_s: int = 0
    slack_s: int = Field(description="planned infusion less margin less projected delivery")
    at_risk: bool = Field(
        default=True, description="false: the order is back on schedule (published once, when it is)"
    )


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
    severity: str = Field(default="major", max_length=20, description="critical for a receipt mismatch")


class IdentityResolved(Payload):
    quarantine_id: str
    decision: str
    # On a rejection, the held message's sender and its own id: its dialect's outbound side tells
    # it (an HL7 application reject naming the message, a FHIR Task set to rejected).
    partner: str | None = Field(default=None, max_length=100)
    adapter: str | None = Field(default=None, max_length=100)
    message_id: str | None = Field(default=None, max_length=200)


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
