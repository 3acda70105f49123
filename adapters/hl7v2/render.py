"""Status back to the site, in its dialect (pure): ORR^O02 / ORL^O22 for an accepted order, ORU^R01
(or ORM^O01) for milestones. ORC-2 is the site's placer order number, ORC-3 the COI (filler)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from adapters.hl7v2.er7 import Delimiters, escape
from adapters.hl7v2.profile import Outbound, SiteProfile
from gateway.sdk import CloudEvent

D = Delimiters()
FILLER = "CGT"  # the filler application's namespace in ORC-3 / OBR-3
# A shipment milestone concerns the site only when the product is on its way to the site.
SITE_BOUND = {"shipment.picked_up": "in_transit_to_site", "shipment.delivered": "delivered_to_site"}


@dataclass(frozen=True)
class SiteOrder:
    """The order as the site knows it: its own identifiers (from the crosswalk) and the product."""

    placer: str | None
    mrn: str | None
    name: str  # PID-5 as written (XPN, escaped): the site's own record of its patient
    product_code: str
    product_name: str | None
    product_system: str
    placed_message_id: str | None = None


def control_id(event: CloudEvent) -> str:
    """Derived from the event id, so a redelivery carries the same MSH-10 and the EHR can de-duplicate."""
    return "CGT" + event.id.replace("-", "")[:17].upper()


def _dtm(value: datetime) -> str:
    return value.strftime("%Y%m%d%H%M%S%z")


def _seg(*fields: str) -> str:
    return D.field.join(fields).rstrip(D.field)


def _e(text: str | None) -> str:
    return escape(text or "", D)


def person_name(family: str | None, given: str | None) -> str:
    """XPN of the patient's name: PID-5 is required, and it is the site's own record."""
    return f"{_e(family)}^{_e(given)}" if family or given else ""


def status_message(
    event: CloudEvent, order: SiteOrder, profile: SiteProfile, outbound: Outbound, *, now: datetime
) -> bytes | None:
    """The message for `event`, or None when it is not one the site hears about."""
    name = event.routing_key
    if name in SITE_BOUND and event.data.get("status") != SITE_BOUND[name]:
        return None
    occurred = event.data.get("occurred_at")
    when = _dtm(datetime.fromisoformat(occurred) if isinstance(occurred, str) else event.time)
    coi = event.subject or str(event.data.get("coi", ""))
    acceptance = name == "order.accepted"
    kind = outbound.acceptance if acceptance else outbound.message_type
    structure = kind.replace("^", "_")
    authority = profile.mrn.assigning_authorities[0] if profile.mrn.assigning_authorities else ""
    segments = [
        _seg(
            "MSH",
            D.encoding_characters,
            _e(outbound.sending_application),
            _e(outbound.sending_facility),
            _e(outbound.receiving_application),
            _e(outbound.receiving_facility),
            _dtm(now),
            "",
            f"{kind}^{structure}",
            control_id(event),
            outbound.processing_id,
            outbound.version,
            "",
            "",
            "",
            "",
            "",
            "UNICODE UTF-8",
        )
    ]
    if acceptance:
        segments.append(_seg("MSA", "AA", _e(order.placed_message_id or order.placer)))
    if order.mrn:
        segments.append(_seg("PID", "1", "", f"{_e(order.mrn)}^^^{_e(authority)}^MR", "", order.name or '""'))
    filler = f"{_e(coi)}^{FILLER}"
    product = f"{_e(order.product_code)}^{_e(order.product_name)}^{_e(order.product_system)}"
    status = None if acceptance else outbound.statuses[name]
    control = "OK" if acceptance else "SC"
    order_status = "SC" if acceptance else status.order_status if status else "IP"
    segments.append(_seg("ORC", control, _e(order.placer), filler, "", order_status, "", "", "", when))
    obr = ["OBR", "1", _e(order.placer), filler, product, "", "", when]
    if not acceptance and kind == "ORU^R01":
        obr += [""] * 14 + [when, "", "", "F"]  # OBR-22 status change time, OBR-25 result status
    segments.append(_seg(*obr))
    if status is not None:
        segments.extend(_observations(event, status.code, status.text, when, kind))
    return ("\r".join(segments) + "\r").encode("utf-8")


def _observations(event: CloudEvent, code: str, text: str, when: str, kind: str) -> list[str]:
    if kind != "ORU^R01":
        return [_seg("NTE", "1", "", _e(f"{code}: {text}"))]
    observations = [("CWE", "CGT-STATUS^Therapy status^L", f"{_e(code)}^{_e(text)}^L")]
    data = event.data
    if isinstance(data.get("expected_delivery"), str):
        expected = _dtm(datetime.fromisoformat(data["expected_delivery"]))
        observations.append(("DTM", "CGT-EXPECTED-DELIVERY^Expected delivery^L", expected))
    if isinstance(data.get("batch_id"), str):
        observations.append(("ST", "CGT-BATCH^Manufacturing batch^L", _e(data["batch_id"])))
    if isinstance(data.get("din"), str):
        observations.append(("ST", "CGT-DIN^Donation identification number^L", _e(data["din"])))
    if isinstance(data.get("shipment_id"), str):
        observations.append(("ST", "CGT-SHIPMENT^Shipment^L", _e(data["shipment_id"])))
    return [
        _seg("OBX", str(n), vt, ident, "", value, "", "", "", "", "", "F", "", "", when)
        for n, (vt, ident, value) in enumerate(observations, start=1)
    ]
