"""The event catalogue: every canonical event name, its payload, and the shape it is published in."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import create_model

from gateway.canonical import payloads as p
from gateway.canonical.base import Canonical
from gateway.canonical.ids import Coi
from gateway.canonical.lifecycle import OrderStatus
from gateway.canonical.parties import PartnerKind

CONTRACT_VERSION = 1


class Scope(StrEnum):
    order = "order"  # about one therapy order: subject is its COI
    patient = "patient"  # about a patient, and so every order of theirs
    gateway = "gateway"  # about the gateway's own work (quarantine, its audit trail)


class OrderContext(Canonical):
    order_id: str
    coi: Coi
    patient_id: str
    status: OrderStatus


class PatientContext(Canonical):
    patient_id: str
    cois: tuple[Coi, ...] = ()


_CONTEXT: dict[Scope, type[Canonical] | None] = {
    Scope.order: OrderContext,
    Scope.patient: PatientContext,
    Scope.gateway: None,
}


SITE = frozenset({PartnerKind.site})
COURIER = frozenset({PartnerKind.courier})
MANUFACTURER = frozenset({PartnerKind.manufacturer})
NOBODY: frozenset[PartnerKind] = frozenset()


@dataclass(frozen=True)
class EventSpec:
    name: str
    payload: type[p.Payload]
    summary: str
    scope: Scope = Scope.order
    senders: frozenset[PartnerKind] = NOBODY  # the partner kinds that may send it (DESIGN §9)
    published: type[p.Payload] | None = None  # what is published instead of the payload (disclosure)
    quiet: bool = False  # kept on the order's timeline, never published (what it means is, instead)
    data: type[Canonical] = field(init=False)

    def __post_init__(self) -> None:
        context = _CONTEXT[self.scope]
        shown = self.published or self.payload
        bases = (context, shown) if context else (shown,)
        title = "".join(part.title() for part in self.name.replace("_", ".").split(".")) + "Data"
        model = create_model(title, __base__=bases, __module__=__name__)
        model.__doc__ = self.summary
        object.__setattr__(self, "data", model)

    @property
    def type(self) -> str:
        """The CloudEvents `type` attribute."""
        return f"org.cgt.{self.name}"

    @property
    def dataschema(self) -> str:
        return f"urn:cgt:contracts:{self.name}:v{CONTRACT_VERSION}"


_SPECS = [
    EventSpec("order.placed", p.OrderPlaced, "A therapy order was placed by a site.", senders=SITE),
    EventSpec("order.updated", p.OrderUpdated, "A placed order's details changed.", senders=SITE),
    EventSpec("order.cancelled", p.WithReason, "The order was cancelled.", senders=SITE),
    EventSpec(
        "order.accepted", p.OrderAccepted, "The manufacturer accepted the order.", senders=MANUFACTURER
    ),
    EventSpec("order.rejected", p.WithReason, "The manufacturer rejected the order.", senders=MANUFACTURER),
    EventSpec("order.held", p.WithReason, "The order was put on hold.", senders=SITE | MANUFACTURER),
    EventSpec(
        "order.resumed", p.WithReason, "An order on hold was released to go on.", senders=SITE | MANUFACTURER
    ),
    EventSpec(
        "order.at_risk",
        p.AtRisk,
        "The order may miss its planned infusion (the gateway's schedule-risk check); published when"
        " it becomes at risk, when its slack moves by a step, and once with at_risk false when it is"
        " back on schedule.",
    ),
    EventSpec(
        "patient.updated",
        p.PatientUpdated,
        "Patient demographics changed (published: which, never their values).",
        Scope.patient,
        senders=SITE,
        published=p.PatientChanged,
    ),
    EventSpec(
        "patient.merged",
        p.PatientMerged,
        "Two patient records were merged (published: the gateway's ids, no identifier values).",
        Scope.patient,
        senders=SITE,
        published=p.PatientsMerged,
    ),
    EventSpec("collection.scheduled", p.CollectionScheduled, "Apheresis was scheduled.", senders=SITE),
    EventSpec("collection.completed", p.CollectionCompleted, "Cells were collected.", senders=SITE),
    EventSpec("collection.cancelled", p.WithReason, "A scheduled apheresis was cancelled.", senders=SITE),
    EventSpec("slot.requested", p.SlotRequested, "A manufacturing slot was requested.", senders=SITE),
    EventSpec("slot.confirmed", p.SlotConfirmed, "The manufacturer confirmed a slot.", senders=MANUFACTURER),
    EventSpec(
        "shipment.booked",
        p.ShipmentBooked,
        "A shipment was booked with a courier.",
        senders=SITE | COURIER | MANUFACTURER,
    ),
    EventSpec("shipment.picked_up", p.ShipmentUpdate, "The courier took the shipment.", senders=COURIER),
    EventSpec("shipment.in_transit", p.ShipmentUpdate, "A shipment reported its progress.", senders=COURIER),
    EventSpec(
        "shipment.custody_transferred",
        p.ShipmentUpdate,
        "Custody passed to someone else.",
        senders=SITE | COURIER | MANUFACTURER,
    ),
    EventSpec(
        "shipment.delayed",
        p.ShipmentDelayed,
        "A shipment will arrive late, or one of its clocks is running out.",
        senders=COURIER,
    ),
    EventSpec(
        "shipment.readings_reported",
        p.ShipmentReadings,
        "A logger's readings for a shipment (stored; never published one by one).",
        senders=SITE | COURIER | MANUFACTURER,
        quiet=True,
    ),
    EventSpec(
        "shipment.temperature_summary",
        p.TemperatureSummary,
        "The periodic summary of a shipment's temperature readings.",
    ),
    EventSpec("shipment.logger_fault", p.LoggerFault, "A shipment's data logger has a fault."),
    EventSpec(
        "shipment.temperature_excursion",
        p.TemperatureExcursion,
        "A shipment left its range.",
        senders=SITE | COURIER | MANUFACTURER,
    ),
    EventSpec(
        "shipment.delivered",
        p.ShipmentUpdate,
        "A shipment was delivered.",
        senders=SITE | COURIER | MANUFACTURER,
    ),
    EventSpec("shipment.exception", p.ShipmentUpdate, "A shipment has a problem.", senders=COURIER),
    EventSpec(
        "shipment.correction_declared",
        p.ShipmentUpdate,
        "A courier declared one of its earlier events about the shipment erroneous (its readings no "
        "longer count); the shipment's state is left as it is.",
        senders=COURIER,
    ),
    EventSpec(
        "manufacturing.material_received",
        p.MaterialReceived,
        "Starting material arrived.",
        senders=MANUFACTURER,
    ),
    EventSpec(
        "manufacturing.started", p.BatchEvent, "Manufacturing of the batch started.", senders=MANUFACTURER
    ),
    EventSpec(
        "manufacturing.step_completed", p.StepCompleted, "A process step completed.", senders=MANUFACTURER
    ),
    EventSpec(
        "manufacturing.deviation_opened", p.DeviationOpened, "A deviation was opened.", senders=MANUFACTURER
    ),
    EventSpec(
        "manufacturing.deviation_closed", p.DeviationClosed, "A deviation was closed.", senders=MANUFACTURER
    ),
    EventSpec("manufacturing.qc_result", p.QcResult, "A release test has a result.", senders=MANUFACTURER),
    EventSpec("manufacturing.released", p.Released, "The product was released.", senders=MANUFACTURER),
    EventSpec("manufacturing.failed", p.ManufacturingFailed, "Manufacturing failed.", senders=MANUFACTURER),
    EventSpec(
        "manufacturing.shipped",
        p.ProductShipped,
        "The released product left the manufacturer.",
        senders=MANUFACTURER,
    ),
    EventSpec("infusion.scheduled", p.InfusionScheduled, "The infusion was scheduled.", senders=SITE),
    EventSpec("infusion.cancelled", p.WithReason, "A scheduled infusion was cancelled.", senders=SITE),
    EventSpec("infusion.completed", p.InfusionCompleted, "The product was infused.", senders=SITE),
    EventSpec("identity.mismatch", p.IdentityMismatch, "A message was quarantined.", Scope.gateway),
    EventSpec(
        "delivery.failed",
        p.DeliveryFailed,
        "An outbound delivery was given up after retries.",
        Scope.gateway,
    ),
    EventSpec(
        "identity.resolved",
        p.IdentityResolved,
        "A quarantined message was decided.",
        Scope.gateway,
    ),
    EventSpec(
        "audit.checkpoint",
        p.AuditCheckpoint,
        "The audit chain's head was signed: a later rewrite of the chain cannot match it.",
        Scope.gateway,
    ),
]

CATALOGUE: dict[str, EventSpec] = {spec.name: spec for spec in _SPECS}


def spec_for(name: str) -> EventSpec:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(f"unknown canonical event {name!r}") from None
