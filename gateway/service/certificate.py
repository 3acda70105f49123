"""The printable chain-of-custody certificate of one order (PDF, fpdf2): every step from
collection to infusion with who, when and where, the identity checks passed at each boundary,
the temperature record of each leg, the gaps, and the audit records' chain hashes that let
anyone verify the certificate against the audit chain (`cgt-gateway audit verify`, or an export
of it). No patient data: the order is named by its COI.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from gateway.service.custody import Custody, Handoff, Leg

TITLE = "Chain-of-custody certificate"


def certificate(chain: Custody, *, product: str | None, issued_at: datetime, issuer: str) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(f"{TITLE} {chain.coi}")
    pdf.set_author(issuer)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    _line(pdf, TITLE, 9)
    pdf.set_font("Helvetica", size=10)
    _line(pdf, f"COI: {chain.coi}")
    if product:
        _line(pdf, f"Product: {product}")
    _line(pdf, f"Order status: {chain.status}")
    _line(pdf, f"Issued: {_at(issued_at)} by {issuer}")
    verdict = (
        "COMPLETE: collection to infusion, no gap"
        if chain.complete
        else f"{len(chain.gaps)} gap(s); last holder: {chain.holder or 'none'}"
    )
    pdf.set_font("Helvetica", "B", 11)
    _line(pdf, f"Chain: {verdict}", 8)

    _heading(pdf, "Handoffs")
    for n, step in enumerate(chain.handoffs, start=1):
        _handoff(pdf, n, step)

    _heading(pdf, "Temperature record by leg")
    if not chain.legs:
        _line(pdf, "No shipment recorded.")
    for leg in chain.legs:
        _leg(pdf, leg)

    _heading(pdf, "Gaps")
    if not chain.gaps:
        _line(pdf, "None: every step starts where the previous one ended.")
    for gap in chain.gaps:
        _line(pdf, f"{_at(gap.at)}  {gap.reason} (event {gap.event_id})")

    _heading(pdf, "How to verify")
    pdf.set_font("Helvetica", size=8)
    pdf.multi_cell(
        0,
        4,
        _latin(
            "Each step names the audit record of the event that recorded it: its sequence number and "
            "its chain hash (SHA-256 over the record and the hash before it). Compare them with the "
            "gateway's audit chain or an export of it (`cgt-gateway audit export --coi <COI>`, then "
            "`cgt-gateway audit verify --export <file>`): a record that was changed, removed or "
            "inserted no longer matches."
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    return bytes(pdf.output())


def _handoff(pdf: FPDF, n: int, step: Handoff) -> None:
    pdf.set_font("Helvetica", "B", 9)
    what = "check" if step.kind == "check" else "handoff"
    _line(pdf, f"{n}. {_at(step.at)}  {step.from_holder} -> {step.to_holder}  ({step.event}, {what})", 5)
    pdf.set_font("Helvetica", size=8)
    details = [
        f"where: {step.location}" if step.location else None,
        f"signed by: {step.signed_by}" if step.signed_by else None,
        f"shipment: {step.shipment_id}" if step.shipment_id else None,
        f"reported by: {step.reported_by}" if step.reported_by else "reported by: the gateway",
    ]
    _line(pdf, "   " + "; ".join(d for d in details if d), 4)
    for check in step.checks:
        _line(pdf, f"   passed: {check}", 4)
    pdf.set_font("Courier", size=7)
    if step.audit is not None:
        _line(pdf, f"   audit #{step.audit.seq} hash {step.audit.hash}", 4)
        _line(pdf, f"   previous hash {step.audit.prev_hash}", 4)
    else:
        _line(pdf, "   audit record: not found", 4)
    pdf.ln(1)


def _leg(pdf: FPDF, leg: Leg) -> None:
    pdf.set_font("Helvetica", "B", 9)
    _line(pdf, f"{leg.shipment_id} ({leg.direction}) courier {leg.courier or '-'}", 5)
    pdf.set_font("Helvetica", size=8)
    parts = [
        f"tracking {leg.tracking_number}" if leg.tracking_number else None,
        f"class {leg.temperature_class}" if leg.temperature_class else None,
        f"picked up {_at(leg.picked_up_at)}" if leg.picked_up_at else None,
        f"delivered {_at(leg.delivered_at)}" if leg.delivered_at else None,
    ]
    _line(pdf, "   " + "; ".join(p for p in parts if p), 4)
    if leg.readings:
        _line(pdf, f"   {leg.readings} readings, min {leg.min_c:.1f} C, max {leg.max_c:.1f} C", 4)
    else:
        _line(pdf, "   no logger readings recorded", 4)
    if not leg.excursions:
        _line(pdf, "   excursions: none", 4)
    for ex in leg.excursions:
        span = f"{_at(ex.started_at)} to {_at(ex.ended_at)}" if ex.started_at else _at(ex.at)
        _line(
            pdf,
            f"   EXCURSION {ex.severity or ''} {span}: peak {ex.temperature_c} C beyond {ex.limit_c} C"
            + (f" for {ex.duration_s} s" if ex.duration_s is not None else ""),
            4,
        )
    pdf.ln(1)


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 12)
    _line(pdf, text, 7)
    pdf.set_font("Helvetica", size=9)


def _line(pdf: FPDF, text: str, height: float = 6) -> None:
    pdf.multi_cell(0, height, _latin(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _latin(text: str) -> str:
    """The PDF's core fonts speak Latin-1: anything else is replaced, never an error."""
    return text.encode("latin-1", errors="replace").decode("latin-1")


def _at(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else "-"
