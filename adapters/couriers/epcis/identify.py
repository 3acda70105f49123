"""Which shipment an EPCIS event is about, and which identifiers it carries (the convention is
docs/couriers-epcis.md#identification):

- the courier's tracking number: a bizTransaction of CBV type `bol`, its URI's last `:`- or
  `/`-separated part -> `courier:<courier>:tracking`;
- the shipper's SSCC in `epcList`, `childEPCs` or `parentID`, as an EPC URN
  (`urn:epc:id:sscc:0614141.1234567890`) or a GS1 Digital Link (`https://id.gs1.org/00/<18>`)
  -> `gs1:sscc` (18 digits);
- the logger: `sensorMetadata.deviceID` -> `courier:<courier>:logger`;
- the order, echoed: `cgt:coi` / `cgt:din` on the event or in its `ilmd` -> `coi`, `isbt128:din`.

The shipment is named by the first of tracking number, SSCC, logger that the event has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.couriers.epcis.vocabulary import Vocabulary
from adapters.couriers.epcis.wire import Event
from gateway.sdk import COI_NAMESPACE, ExternalRef, validate_coi, validate_din

SSCC_NAMESPACE = "gs1:sscc"
DIN_NAMESPACE = "isbt128:din"
_SSCC_URN = re.compile(r"^urn:epc:id:sscc:(\d{6,12})\.(\d{5,11})$")
_SSCC_LINK = re.compile(r"^https?://[^/]+(?:/[^/]+)*?/00/(\d{18})(?:[/?#].*)?$")
_TRACKING = re.compile(r"[:/]")
ECHO_KEYS = {"coi": ("cgt:coi", COI_NAMESPACE), "din": ("cgt:din", DIN_NAMESPACE)}


def check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit of `digits` (weights 3, 1, ... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def sscc(epc: str) -> str | None:
    """The 18-digit SSCC an EPC names; None when it names something else (a GTIN, a location)."""
    if (link := _SSCC_LINK.match(epc)) is not None:
        value = link.group(1)
        if check_digit(value[:17]) != value[17]:
            raise ValueError(f"the SSCC in {epc!r} has a wrong check digit")
        return value
    if (urn := _SSCC_URN.match(epc)) is not None:
        prefix, serial = urn.groups()
        if len(prefix) + len(serial) != 17:
            raise ValueError(f"{epc!r} is not an SSCC EPC (company prefix and serial make 17 digits)")
        body = serial[0] + prefix + serial[1:]  # the extension digit leads
        return body + check_digit(body)
    return None


@dataclass(frozen=True)
class Identified:
    """An event's shipment (`key`: the value that names it) and every identifier it carries."""

    key: str
    refs: tuple[ExternalRef, ...]
    binds: tuple[ExternalRef, ...]  # the shipment's own identifiers: bound to its order if new


def identify(event: Event, vocabulary: Vocabulary, courier: str) -> Identified | None:
    """None when the event names no shipment: it is not the gateway's business."""
    tracking = [
        _TRACKING.split(t.biz_transaction)[-1]
        for t in event.biz_transactions
        if t.type is not None
        and vocabulary.term("transaction_types", t.type) == vocabulary.tracking_transaction
    ]
    epcs = [*event.epc_list, *event.child_epcs, *([event.parent_id] if event.parent_id else [])]
    ssccs = list(dict.fromkeys(s for e in epcs if (s := sscc(e)) is not None))
    loggers = list(
        dict.fromkeys(m.device_id for e in event.sensors if (m := e.sensor_metadata) and m.device_id)
    )
    own = [
        *(ExternalRef(namespace=f"courier:{courier}:tracking", value=v) for v in tracking if v),
        *(ExternalRef(namespace=SSCC_NAMESPACE, value=v) for v in ssccs),
        *(ExternalRef(namespace=f"courier:{courier}:logger", value=v) for v in loggers),
    ]
    if not own:
        return None
    binds = tuple(dict.fromkeys(own))
    return Identified(own[0].value, binds + _echoes(event), binds)


def _echoes(event: Event) -> tuple[ExternalRef, ...]:
    """The order's COI / DIN where the courier echoes them (label scans): they must match."""
    found: list[ExternalRef] = []
    for where in (event.model_extra or {}, event.ilmd or {}):
        for kind, (key, namespace) in ECHO_KEYS.items():
            value = where.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ValueError(f"{key} must be a string")
            checked = validate_coi(value) if kind == "coi" else validate_din(value)
            found.append(ExternalRef(namespace=namespace, value=checked))
    return tuple(dict.fromkeys(found))
