"""The simulation's vocabulary: boundaries, what a step expects, fault kinds, steps and journeys."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from gateway.simulate.identities import Identities

H = timedelta(hours=1)
D = timedelta(days=1)
M = timedelta(minutes=1)


class Boundary(StrEnum):
    """Where a message crosses into the gateway: who sends it, over what."""

    site_hl7 = "site.hl7"  # HL7 v2 over MLLP
    site_http = "site.http"  # the site's FHIR R4 (and its shipments API) over HTTP
    courier = "courier.http"
    mes = "mes.http"
    mes_amqp = "mes.amqp"  # the manufacturer's queue, the outcome on a direct reply-to


class Expect(StrEnum):
    applied = "applied"
    quarantined = "quarantined"
    refused = "refused"  # an error answer (4xx, AE/AR): nothing applied
    ignored = "ignored"  # acknowledged, not ours
    replayed = "replayed"  # the first answer again: nothing changed


class Fault(StrEnum):
    duplicate = "duplicate"  # the same message sent again
    out_of_order = "out_of_order"  # a step sent before the one it depends on, then again in order
    swap_din = "swap_din"  # another patient's bag DIN scanned at receipt
    swap_mrn = "swap_mrn"  # another patient's MRN on this order's update
    swap_tracking = "swap_tracking"  # another shipment's tracking number on this order's scan
    malformed = "malformed"  # bytes no dialect can read
    excursion = "excursion"  # readings out of the class's range on the inbound leg


SWAPS = frozenset({Fault.swap_din, Fault.swap_mrn, Fault.swap_tracking})
ALL_FAULTS = tuple(Fault)


@dataclass(frozen=True)
class Parties:
    site: str
    courier: str
    manufacturer: str
    product: str  # the ISBT 128 product code (which manufacturer makes it is the gateway's data)


@dataclass
class Step:
    journey: int
    at: timedelta  # simulated time from the journey's start
    boundary: Boundary
    sender: str
    event: str  # the canonical event it means ("adt.noise", "malformed" for the others)
    ids: Identities
    data: dict[str, Any] = field(default_factory=dict)
    fault: Fault | None = None
    expect: Expect = Expect.applied
    key: str = ""  # the message id; set by the plan
    said_at: timedelta | None = None  # when the message says it happened, if not when it is sent

    @property
    def clean(self) -> bool:
        return self.fault is None

    @property
    def stamp(self) -> timedelta:
        return self.at if self.said_at is None else self.said_at


@dataclass(frozen=True)
class Readings:
    """A logger's readings, compactly (a journey has ~240, a run millions): epoch seconds and
    °C side by side in two arrays."""

    seconds: array[int]  # 'q'
    celsius: array[float]  # 'd'

    @classmethod
    def of(cls, pairs: list[tuple[datetime, float]]) -> Readings:
        return cls(array("q", (int(t.timestamp()) for t, _ in pairs)), array("d", (c for _, c in pairs)))

    def __len__(self) -> int:
        return len(self.seconds)

    def __iter__(self) -> Iterator[tuple[datetime, float]]:
        for second, celsius in zip(self.seconds, self.celsius, strict=True):
            yield datetime.fromtimestamp(second, UTC), round(celsius, 2)

    @property
    def last(self) -> datetime:
        return datetime.fromtimestamp(self.seconds[-1], UTC)

    def with_celsius(self, celsius: list[float]) -> Readings:
        return Readings(self.seconds, array("d", celsius))


@dataclass
class Journey:
    n: int
    ids: Identities
    parties: Parties
    start: datetime  # simulated
    steps: list[Step] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)


@dataclass(frozen=True)
class Credentials:
    """How the simulator authenticates as one partner (the gateway holds the other half)."""

    partner: str
    api_key: str | None = None
    hmac_secret: str | None = None
    webhook_secret: str | None = None  # Standard Webhooks (whsec_...), for the courier dialects
    sending_application: str | None = None
    sending_facility: str | None = None
    mrn_authority: str = "SIMHOSP"


class Transient(Exception):
    """A failure a partner's engine would send the message again after (5xx, no answer in time)."""


@dataclass(frozen=True)
class Wire:
    """One message ready to send: to the AMQP `queue` when one is named, else an HTTP POST to
    `path`, else over MLLP."""

    step: Step
    body: bytes
    path: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    queue: str | None = None


def iso(t: Any) -> Any:
    return t.astimezone(UTC).isoformat() if isinstance(t, datetime) else t
