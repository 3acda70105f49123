"""A site's HL7 v2 mapping profile: the data in `mappings/hl7v2/<profile>.yaml` (or the folder
`CGT_PROFILE_DIRS` names for `hl7v2`), every one loaded and validated when the gateway starts.

Which PID-3 repetition is the MRN, where the COI travels, which ORC-1 codes mean what, how SIU
appointments are told apart, what Z-segments keep, and where status messages go back to.
"""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from adapters.hl7v2.er7 import CHARSETS, Message, field_path, parse
from gateway.sdk import Profiles

FOLDER = "hl7v2"
OrderEvent = Literal["order.placed", "order.cancelled", "order.updated", "order.held", "order.resumed"]


class _Rules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_path(path: str) -> str:
    field_path(path)  # raises ValueError on a bad path: the profile is refused at load
    return path


FieldRef = Annotated[str, AfterValidator(_check_path)]
Paths = tuple[FieldRef, ...]


class IdentifierRule(_Rules):
    """Which repetitions of a CX field (PID-3, MRG-1) carry this identifier."""

    field: FieldRef = "PID-3"
    identifier_types: tuple[str, ...] = Field(min_length=1)
    assigning_authorities: tuple[str, ...] = Field(default=(), description="empty: any authority")
    namespace: str

    def matches(self, authority: str, identifier_type: str) -> bool:
        if identifier_type not in self.identifier_types:
            return False
        return not self.assigning_authorities or authority in self.assigning_authorities


ISBT128 = "isbt128"


class OrderRules(_Rules):
    placer_order: Paths = ("ORC-2.1", "OBR-2.1")
    placer_namespace: str
    product: Paths = ("OBR-4",)
    blood_product: Paths = ("BPO-2",)  # BPO-1 is the set id (SI)
    product_systems: dict[str, str] = Field(
        default_factory=dict, description="coding system (CE-3) -> canonical Product.system"
    )
    therapy_products: tuple[str, ...] = Field(
        default=(), description="the site's own therapy product codes (local systems, or no system)"
    )
    local_product_system: str = Field(default="", description="the system of a listed code sent without one")
    practitioner: Paths = ("ORC-12", "OBR-16")
    order_control: dict[str, OrderEvent] = Field(min_length=1)
    reason: Paths = ("ORC-16.2", "ORC-16.1")
    occurred_at: Paths = ("ORC-9", "MSH-7")

    @field_validator("product_systems")
    @classmethod
    def _systems_upper(cls, systems: dict[str, str]) -> dict[str, str]:
        unknown = sorted({v for v in systems.values() if v != ISBT128 and not v.startswith("local:")})
        if unknown:
            raise ValueError(f"product systems are {ISBT128!r} or 'local:<site>', not {unknown}")
        return {k.upper(): v for k, v in systems.items()}  # CE-3 is compared upper-case

    @field_validator("therapy_products")
    @classmethod
    def _codes_upper(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(c.upper() for c in codes)

    @model_validator(mode="after")
    def _local_system_named(self) -> OrderRules:
        if self.therapy_products and not self.local_product_system.startswith("local:"):
            raise ValueError(
                "therapy_products need local_product_system (local:<site>) for codes sent without one"
            )
        return self


Sex = Literal["M", "F", "O", "U"]
# HL7 table 0001 -> canonical sex; A (ambiguous), N (not applicable) and X have no canonical code.
_SEX: dict[str, Sex] = {"M": "M", "F": "F", "O": "O", "U": "U", "A": "O", "N": "U", "X": "O"}


class PatientRules(_Rules):
    updated: tuple[str, ...] = ("A01", "A04", "A08")
    merged: tuple[str, ...] = ("A40",)
    occurred_at: Paths = ("EVN-2", "MSH-7")
    sex: dict[str, Sex] = Field(default_factory=lambda: dict(_SEX))


class SchedulingRules(_Rules):
    service: Paths = ("AIS-3.1", "SCH-8.1", "SCH-7.1")
    apheresis: tuple[str, ...] = Field(min_length=1)
    infusion: tuple[str, ...] = Field(min_length=1)
    start: Paths = ("AIS-4", "SCH-11.4", "TQ1-7")
    location: Paths = ("AIL-3.1",)
    placer_order: Paths = ("SCH-26.1",)
    appointment: Paths = ("SCH-1.1", "SCH-2.1")
    appointment_namespace: str
    reason: Paths = ("SCH-6.2", "SCH-6.1")

    @field_validator("apheresis", "infusion")
    @classmethod
    def _upper(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(c.upper() for c in codes)  # codes are compared upper-case


class StatusCode(_Rules):
    """How one canonical event reads in the site's status message (OBX-5, ORC-5)."""

    code: str
    text: str
    order_status: str = Field(default="IP", description="HL7 table 0038, written to ORC-5")


class Outbound(_Rules):
    """Where and how status goes back to the site's EHR over MLLP."""

    host: str
    port: int = Field(ge=1, le=65535)
    message_type: Literal["ORU^R01", "ORM^O01"] = "ORU^R01"
    acceptance: Literal["ORR^O02", "ORL^O22"] = "ORR^O02"
    version: str = "2.5.1"
    events: tuple[str, ...] = Field(min_length=1)
    statuses: dict[str, StatusCode] = Field(default_factory=dict)
    sending_application: str = "CGT_GATEWAY"
    sending_facility: str = "CGT"
    receiving_application: str = ""
    receiving_facility: str = ""
    processing_id: str = "P"
    connect_timeout: float = Field(default=5.0, gt=0)
    ack_timeout: float = Field(default=10.0, gt=0)
    attempts: int = Field(default=3, ge=1, le=10, description="tries within one delivery")
    backoff: float = Field(default=0.5, ge=0, description="seconds before the 2nd try, doubling")
    retry_on: tuple[Literal["AE", "AR", "CE", "CR"], ...] = ("AE", "CE")
    delivery_limit: int | None = Field(default=None, ge=1, description="default: CGT_CONSUMER_DELIVERY_LIMIT")

    @model_validator(mode="after")
    def _every_event_has_a_status(self) -> Outbound:
        missing = [e for e in self.events if e != "order.accepted" and e not in self.statuses]
        if missing:
            raise ValueError(f"outbound events without a status code: {missing}")
        return self


# The versions whose fields the mappings read sit where 2.5.1 puts them (PID-3's 2.2 CM_PAT_ID has
# the CX components in the same places; CE became CWE, TS became DTM, with the same components).
READABLE_VERSIONS = (
    "2.2",
    "2.3",
    "2.3.1",
    "2.4",
    "2.5",
    "2.5.1",
    "2.6",
    "2.7",
    "2.7.1",
    "2.8",
    "2.8.1",
    "2.8.2",
)


class Limits(_Rules):
    """What one message may hold: above it the message is refused (AR), before any mapping."""

    segments: int = Field(default=1000, ge=10, le=100_000)
    repetitions: int = Field(default=100, ge=2, le=10_000, description="of any one field")


class SiteProfile(_Rules):
    partner: str
    versions: tuple[str, ...] = READABLE_VERSIONS
    processing_ids: tuple[str, ...] = ("P",)
    default_charset: str = "UTF-8"
    timezone: str = "UTC"
    strict_validation: bool = False
    mrn: IdentifierRule
    coi: IdentifierRule | None = None
    orders: OrderRules
    patients: PatientRules = PatientRules()
    scheduling: SchedulingRules
    z_segments: dict[str, Literal["notes", "ignore"]] = Field(default_factory=dict)
    outbound: Outbound | None = None
    limits: Limits = Limits()

    @field_validator("versions")
    @classmethod
    def _readable_versions(cls, versions: tuple[str, ...]) -> tuple[str, ...]:
        unreadable = [v for v in versions if v not in READABLE_VERSIONS]
        if unreadable:
            raise ValueError(
                f"versions the mappings cannot read: {unreadable} (readable: {READABLE_VERSIONS})"
            )
        return versions

    @field_validator("default_charset")
    @classmethod
    def _known_charset(cls, value: str) -> str:
        if value.upper() not in CHARSETS:
            raise ValueError(f"unknown character set {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _own_namespaces(self) -> SiteProfile:
        own = f"site:{self.partner}:"
        spaces = [self.mrn.namespace, self.orders.placer_namespace, self.scheduling.appointment_namespace]
        foreign = [ns for ns in spaces if not ns.startswith(own)]
        if foreign:
            raise ValueError(f"namespaces must start with {own}: {foreign}")
        if not self.mrn.namespace.endswith(":mrn"):
            raise ValueError("the MRN namespace must end in ':mrn' (a patient identifier)")
        if self.coi is not None and self.coi.namespace != "coi":
            raise ValueError("the COI's namespace is 'coi'")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _partner(profile: SiteProfile) -> str:
    return profile.partner


def site_profiles() -> Profiles[SiteProfile]:
    """The site profiles, to load from the settings' folder at start-up."""
    return Profiles(SiteProfile, FOLDER, dialect="HL7 v2", partner_of=_partner)


def parse_within_limits(raw: bytes, profile: SiteProfile) -> Message:
    """`er7.parse` in the profile's character set default, refusing what is over its limits."""
    limits = profile.limits
    return parse(
        raw, profile.default_charset, max_segments=limits.segments, max_repetitions=limits.repetitions
    )
