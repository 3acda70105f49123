"""The canonical therapy order: one patient's journey from vein to vein."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from gateway.canonical.base import Canonical
from gateway.canonical.ids import Coi, Din
from gateway.canonical.lifecycle import OrderStatus


def normalise_name(name: str) -> str:
    """Case, accents, spaces and punctuation removed: 'Dupont-Éva ' == 'DUPONT EVA'."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if c.isalnum()).upper()


def _same(value: object) -> object:
    return value


def _first_name(given: str) -> str:
    words = given.replace(".", " ").split()
    return normalise_name(words[0]) if words else ""


class PatientIdentity(Canonical):
    """Minimal demographics, enough to check identity; nothing else about the patient travels."""

    family_name: str | None = Field(default=None, max_length=200)
    given_name: str | None = Field(default=None, max_length=200)
    birth_date: date | None = None
    sex: str | None = Field(default=None, pattern="^[MFOU]$")
    # Never serialised (nor stored, nor in a contract): a render reads it from its view.
    initials: str | None = Field(
        default=None,
        exclude=True,
        max_length=8,
        description="derived by the gateway from the names (`initials`) for a destination whose "
        "disclosure profile lists patient.initials (what a message says here is never used for it)",
    )

    def disagreements(self, other: PatientIdentity) -> list[str]:
        """Fields both sides carry that disagree after normalisation (names of fields only)."""
        out: list[str] = []
        for field in ("family_name", "given_name"):
            mine, theirs = getattr(self, field), getattr(other, field)
            if mine and theirs and normalise_name(mine) != normalise_name(theirs):
                out.append(field)
        if self.birth_date and other.birth_date and self.birth_date != other.birth_date:
            out.append("birth_date")
        return out

    def identity_changes(self, newer: PatientIdentity) -> list[str]:
        """Identity-defining fields `newer` would change: family name and first given name beyond
        normalisation, birth date, sex (fields both carry). A middle name or initial is not one."""
        compared: dict[str, Callable[[Any], object]] = {
            "family_name": normalise_name,
            "given_name": _first_name,
            "birth_date": _same,
            "sex": _same,
        }
        out: list[str] = []
        for field, key in compared.items():
            mine, theirs = getattr(self, field), getattr(newer, field)
            if mine and theirs and key(mine) != key(theirs):
                out.append(field)
        return out

    def merged_with(self, newer: PatientIdentity) -> PatientIdentity:
        """Newer values win where they are given."""
        return self.model_copy(update=newer.model_dump(exclude_none=True))


def initials(patient: PatientIdentity) -> str | None:
    """The first given name's initial, then the family name's, upper case without accents
    ('Éva Dupont' -> 'ED'); None when the patient has no name."""
    given = _first_name(patient.given_name or "")[:1]
    family = normalise_name(patient.family_name or "")[:1]
    return (given + family) or None


class Party(Canonical):
    """An organisation or person by the identifier its own system uses."""

    id: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)


class Product(Canonical):
    code: str = Field(min_length=1, max_length=50, description="ISBT 128 product code or local code")
    system: str = Field(default="isbt128", max_length=100)
    name: str | None = Field(default=None, max_length=200)


class Collection(Canonical):
    scheduled_start: datetime | None = None
    site: Party | None = None
    din: Din | None = None
    collected_at: datetime | None = None


class QcOutcome(StrEnum):
    passed = "pass"
    failed = "fail"
    pending = "pending"


def qc_test_name(test: str) -> str:
    """One spelling of a QC test's name: 'CAR expression' and 'car-expression' are 'car_expression'."""
    return "_".join(test.strip().lower().replace("-", " ").replace("/", " ").split())


class Manufacturing(Canonical):
    manufacturer: Party | None = None
    slot_id: str | None = None
    slot_start: datetime | None = None
    batch_id: str | None = None
    started_at: datetime | None = None
    released_at: datetime | None = None
    shipped_at: datetime | None = None
    qc: dict[str, QcOutcome] = Field(
        default_factory=dict, description="each QC test's latest result (a retest replaces the first)"
    )
    open_deviations: dict[str, str] = Field(
        default_factory=dict, description="deviation id -> its severity ('' when not given), until closed"
    )


class ShipmentDirection(StrEnum):
    to_manufacturer = "to_manufacturer"
    to_site = "to_site"


class TemperatureClass(StrEnum):
    fresh_2_8c = "2-8C"
    ambient_15_25c = "15-25C"
    frozen_minus_80c = "-80C"
    cryo_minus_150c = "<=-150C"


class Shipment(Canonical):
    shipment_id: str = Field(min_length=1, max_length=100)
    direction: ShipmentDirection
    courier: str | None = None
    tracking_number: str | None = None
    sscc: str | None = Field(default=None, pattern=r"^\d{18}$", description="the shipper's GS1 SSCC")
    logger_id: str | None = Field(default=None, max_length=100, description="the data logger's serial")
    temperature_class: TemperatureClass | None = None
    viability_deadline: datetime | None = None
    status: str = "booked"
    picked_up_at: datetime | None = None
    expected_delivery: datetime | None = None
    delivered_at: datetime | None = None

    @property
    def keys(self) -> frozenset[str]:
        """Every value the shipment may be named by in a courier's message."""
        given = (self.shipment_id, self.tracking_number, self.sscc, self.logger_id)
        return frozenset(k for k in given if k)


class Infusion(Canonical):
    planned_at: datetime | None = None
    infused_at: datetime | None = None


class ScheduleRisk(Canonical):
    """The schedule-risk state last published for the order (gateway.service.risk)."""

    at_risk: bool
    slack_s: int


class OrderDetails(Canonical):
    """What a placed order says about itself, before the gateway knows it."""

    product: Product
    ordering_site: Party
    ordering_practitioner: Party | None = None
    collection: Collection = Collection()
    infusion: Infusion = Infusion()
    notes: str | None = Field(default=None, max_length=2000)


class TherapyOrder(OrderDetails):
    """The gateway's view of one order. Changed only by applying canonical events."""

    order_id: str
    coi: Coi
    patient_id: str
    patient: PatientIdentity = PatientIdentity()
    manufacturing: Manufacturing = Manufacturing()
    shipments: tuple[Shipment, ...] = ()
    status: OrderStatus = OrderStatus.ordered
    status_before_hold: OrderStatus | None = None
    schedule_risk: ScheduleRisk | None = None
    version: int = 1
    created_at: datetime
    updated_at: datetime

    def shipment(self, key: str) -> Shipment | None:
        """The shipment that `key` names: its id, or any identifier a courier knows it by
        (tracking number, shipper SSCC, logger id)."""
        return next((s for s in self.shipments if key in s.keys), None)
