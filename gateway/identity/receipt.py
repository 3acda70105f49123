"""Receipt verification (DESIGN §5), pure: is the bag the manufacturer scanned this order's collection?

The COI and the DIN scanned at receipt must both be given, well formed and the order's own: the
COI the order's, the DIN (its ISO/IEC 7064 MOD 37-2 check character verified when the scan carries
one) the collection's. Each finding is a short PHI-free phrase; identifier values never appear.
"""

from __future__ import annotations

import contextlib

from gateway.canonical.ids import COI_NAMESPACE, ExternalRef, mod37_2_check, validate_coi, validate_din
from gateway.canonical.order import TherapyOrder
from gateway.canonical.payloads import MaterialReceived

DIN_NAMESPACE = "isbt128:din"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"


def scanned_din(scan: str) -> str:
    """The 13-character DIN of a scan, or ValueError saying what is wrong with it.

    Accepted as read: the 13 characters alone (a bar code carries no check character), with the
    check character printed for keyboard entry (14), or with the two flag characters of the bar
    code's data content (15, a leading '=' allowed), whose type 3 flags (60 to 96) carry the check
    value (ISBT 128 ST-001) and are verified too."""
    value = scan.strip().upper().removeprefix("=")
    if len(value) != 15:
        return validate_din(value)
    body, flags = validate_din(value[:13]), value[13:]
    type3 = flags.isdigit() and 60 <= int(flags) <= 96
    if type3 and int(flags) - 60 != _ALPHABET.index(mod37_2_check(body)):
        raise ValueError("DIN check character does not match (ISO/IEC 7064 MOD 37-2, type 3 flags)")
    return body


def receipt_findings(order: TherapyOrder, receipt: MaterialReceived) -> list[str]:
    """What disagrees between the receipt's scans and the order: empty when the bag is the order's."""
    findings: list[str] = []
    if receipt.scanned_coi is None:
        findings.append("no COI scanned")
    elif receipt.scanned_coi != order.coi:
        findings.append("the scanned COI is not the order's")
    if receipt.din is None:
        findings.append("no DIN scanned")
        return findings
    try:
        din = scanned_din(receipt.din)
    except ValueError as exc:
        findings.append(f"the scanned DIN is refused: {exc}")
        return findings
    if order.collection.din is None:
        findings.append("the order has no collection DIN to verify the scan against")
    elif din != order.collection.din:
        findings.append("the scanned DIN is not the order's collection DIN")
    return findings


def scanned_refs(receipt: MaterialReceived) -> list[ExternalRef]:
    """The well-formed scans as crosswalk identifiers: where else they are bound tells whose bag it is."""
    refs: list[ExternalRef] = []
    if receipt.scanned_coi is not None:
        refs.append(ExternalRef(namespace=COI_NAMESPACE, value=validate_coi(receipt.scanned_coi)))
    if receipt.din is not None:
        with contextlib.suppress(ValueError):  # a misread DIN names no order
            refs.append(ExternalRef(namespace=DIN_NAMESPACE, value=scanned_din(receipt.din)))
    return refs
