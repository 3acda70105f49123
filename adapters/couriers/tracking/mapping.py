"""A carrier's tracking event -> the canonical command, or the reason there is none.

The shipment is named by its tracking number in the courier's own namespace
(`courier:<partner>:tracking`, bound when the shipment was booked); the payload's `shipment_id`
is the tracking number, which `TherapyOrder.shipment` finds. A reference field the partner's
profile names echoes the COI or DIN: it joins the command's identifiers, so that a label of
another order makes the message a mismatch (quarantined) instead of an update.

An unknown status code is never guessed: the message is kept (stored, not applied), answered 202
"not applied: unknown status code X", logged and counted by partner and code
(`cgt_tracking_unknown_status_total`). A known code that is not an event of the order (a label
printed) is acknowledged and ignored.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from adapters.couriers.tracking.codes import IGNORE, CodeTable
from adapters.couriers.tracking.events import TrackEvent
from adapters.couriers.tracking.profile import TrackingProfile
from gateway.sdk import (
    Command,
    ExternalRef,
    MappingError,
    NotOurs,
    Partner,
    validate_coi,
    validate_din,
)

log = logging.getLogger(__name__)

UNKNOWN_STATUS = Counter(
    "cgt_tracking_unknown_status_total",
    "Carrier tracking events kept and not applied: their status code is in no code table",
    ["partner", "carrier", "code"],
)


class UnknownStatusCode(MappingError):
    """Kept raw and not applied; accepted (202), since sending it again would not help: the code
    table needs the code first (then `cgt-gateway messages reprocess` applies the kept message)."""

    http_status = 202

    def __init__(self, partner: str, event: TrackEvent) -> None:
        super().__init__(
            f"not applied: unknown status code {event.carrier_code}",
            detail=f"{partner}: {event.carrier} status {event.carrier_code} is in no code table",
            location="/status",
            code="unknown_status_code",
        )
        self.partner, self.carrier, self.carrier_code = partner, event.carrier, event.carrier_code

    def report(self) -> None:
        UNKNOWN_STATUS.labels(self.partner, self.carrier, self.carrier_code).inc()
        log.warning(
            "carrier tracking: %s sent unknown %s status %s", self.partner, self.carrier, self.carrier_code
        )


def tracking_namespace(partner: Partner) -> str:
    return f"courier:{partner.id}:tracking"


def _echoed(event: TrackEvent, profile: TrackingProfile) -> list[ExternalRef]:
    refs: list[ExternalRef] = []
    for kind, value in event.references:
        namespace = profile.references.get(kind)
        if namespace is None:
            continue
        try:
            checked = validate_coi(value) if namespace == "coi" else validate_din(value)
        except ValueError as exc:
            raise MappingError(
                f"reference {kind} is not a {namespace}: {exc}", location=f"/references/{kind}"
            ) from None
        refs.append(ExternalRef(namespace=namespace, value=checked))
    return refs


def command_for(event: TrackEvent, table: CodeTable, partner: Partner, profile: TrackingProfile) -> Command:
    """The command of a known, tracked status; raises UnknownStatusCode, NotOurs (ignored) or
    MappingError (a reference that is not what the profile says)."""
    canonical = table.resolve(event.codes)
    if canonical is None:
        raise UnknownStatusCode(partner.id, event)
    if canonical == IGNORE:
        raise NotOurs("status_not_tracked", detail=f"{event.carrier} status {event.carrier_code}")
    tracking = ExternalRef(namespace=tracking_namespace(partner), value=event.tracking_number)
    return Command.model_validate(
        {
            "event": canonical,
            "refs": [tracking, *_echoed(event, profile)],
            "payload": {
                "occurred_at": event.occurred_at,
                "shipment_id": event.tracking_number,
                "location": event.location,
                "signed_by": event.signed_by,
                "carrier_code": event.carrier_code,
                "expected_delivery": event.expected_delivery,
                "note": event.note,
            },
        }
    )
