"""The ADT filter: a hospital sends every patient's ADT; only patients the gateway knows matter.

An ADT message whose patient identifiers are all absent from the crosswalk (asked through the
gateway's read-only `Crosswalk` port) is acknowledged AA at once and dropped, with nothing of it
stored. Anything the filter cannot judge (it does not parse,
it names no MRN) goes the normal way, so that it is stored and answered properly.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter

from adapters.hl7v2.identity import patient_refs
from adapters.hl7v2.profile import SiteProfile, parse_within_limits
from gateway.sdk import ExternalRef, GatewayError, metrics

_DROPPED = Counter(
    "cgt_hl7v2_adt_dropped_total", "ADT messages acknowledged and dropped: patient unknown", ["partner"]
)


@dataclass(frozen=True)
class _Drop:
    partner: str

    def inc(self) -> None:
        _DROPPED.labels(self.partner).inc()
        metrics.IGNORED.labels(self.partner, "hl7v2", "patient_unknown").inc()


class _Dropped:
    """`DROPPED.labels(partner).inc()`: counts a dropped ADT in cgt_hl7v2_adt_dropped_total and,
    with all other traffic acknowledged and ignored, in cgt_inbound_ignored_total (reason
    `patient_unknown`), so one metric shows everything a site sends that the gateway ignores."""

    def labels(self, partner: str) -> _Drop:
        return _Drop(partner)


DROPPED = _Dropped()


def adt_patient_refs(raw: bytes, profile: SiteProfile) -> list[ExternalRef]:
    """The MRNs of an ADT message, or [] when the filter cannot tell (the message goes on)."""
    try:
        message = parse_within_limits(raw, profile)
        return patient_refs(message, profile)
    except GatewayError:
        return []
