"""HL7 acknowledgements: what became of a message, in the sender's own version and delimiters.

    applied                 AA / CA
    quarantined (held)      AA / CA + ERR severity W: stored safely and held for identity review;
                            the sender must not resend (a resend gets this same ACK again)
    MappingError, ContractViolation, IllegalTransition, TransientError ...   AE / CE
    MalformedMessage, TooLarge, UnsupportedMessage, NotAuthenticated, NotPermitted   AR / CR
    DuplicateKey (MSH-10 already used by a message with other content)   AR / CR, ERR code 205

Enhanced mode (MSH-15/16 valued) answers with the commit codes and honours MSH-15 (AL, NE, ER,
SU; an unknown value as AL); `application=True` renders the application acknowledgement that
MSH-16 asks for (AA/AE/AR; see transport.py for where it is sent). The ERR segment names the location (segment^sequence^field) and the HL7 table 0357 code:
ERR-1 for v2.3-2.4, ERR-2..8 from v2.5.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from adapters.hl7v2.er7 import CHARSETS, Delimiters, escape
from adapters.hl7v2.header import Header
from gateway.sdk import Outcome, errors

Kind = Literal["accept", "held", "error", "reject"]
_ORIGINAL: dict[Kind, str] = {"accept": "AA", "held": "AA", "error": "AE", "reject": "AR"}
_ENHANCED: dict[Kind, str] = {"accept": "CA", "held": "CA", "error": "CE", "reject": "CR"}
_REJECTED = (
    errors.MalformedMessage,
    errors.UnsupportedMessage,
    errors.NotAuthenticated,
    errors.NotPermitted,
    errors.DuplicateKey,
)
# Where an error the core raises without knowing HL7 lies in the message.
_WHERE = {"DuplicateKey": "MSH-10"}
_CODES: list[tuple[type[errors.GatewayError], str]] = [
    (errors.TooLarge, "207"),
    (errors.MalformedMessage, "100"),
    (errors.UnsupportedMessage, "200"),
    (errors.ContractViolation, "102"),
    (errors.TransientError, "206"),
]
NAMES = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "104": "Value too long",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}
HELD = "received and held for identity review; do not resend"
_LOCATION = re.compile(r"^([A-Z][A-Z0-9]{2})(?:-(\d{1,3})(?:\.(\d{1,3}))?)?$")


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    code: str = "0"  # HL7 table 0357
    location: str | None = None
    text: str | None = None
    reason: str | None = None  # quarantine reason, as ERR-5


ACCEPTED = Verdict("accept")


def verdict_of_error(exc: errors.GatewayError) -> Verdict:
    kind: Kind = "reject" if isinstance(exc, _REJECTED) else "error"
    code = getattr(exc, "code", None) or next((c for t, c in _CODES if isinstance(exc, t)), "207")
    return Verdict(kind, code, getattr(exc, "location", None), exc.public_message)


def verdict_of(outcome: Outcome) -> Verdict:
    if outcome.status in ("applied", "ignored"):
        return ACCEPTED
    if outcome.status == "quarantined":
        return Verdict("held", "0", None, f"{HELD} ({outcome.reason})", outcome.error)
    error = getattr(errors, outcome.error or "", None)
    kind: Kind = "reject" if isinstance(error, type) and issubclass(error, _REJECTED) else "error"
    default = "207"
    if isinstance(error, type):
        default = next((c for t, c in _CODES if issubclass(error, t)), "207")
    location = outcome.location or _WHERE.get(outcome.error or "")
    return Verdict(kind, outcome.code or default, location, outcome.reason)


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return (2, 5, 1)


def _rule(value: str) -> str:
    """MSH-15/16 as a rule; an unknown value asks for an answer, as AL does: never silence where
    a sender may be waiting for one."""
    return value if value in ("AL", "NE", "ER", "SU") else "AL"


def _asks(rule: str, code: str) -> bool:
    positive = code in ("CA", "AA")
    return rule == "AL" or (rule == "ER" and not positive) or (rule == "SU" and positive)


def _wanted(header: Header | None, code: str) -> bool:
    if header is None or not header.enhanced:
        return True
    return _asks(_rule(header.accept_ack or "AL"), code)


def application_wanted(header: Header | None, verdict: Verdict) -> bool:
    """Does MSH-16 ask for an application acknowledgement of this verdict (enhanced mode)?"""
    if header is None or not header.application_ack:
        return False
    return _asks(_rule(header.application_ack), _ORIGINAL[verdict.kind])


def _location(verdict: Verdict, comp: str, *, components: bool = True) -> str:
    """ERL `segment^sequence^field[^repetition^component]`; before v2.5 ELD's `segment^sequence^field`."""
    m = _LOCATION.match(verdict.location or "")
    if not m:
        return "" if components else comp * 2
    seg, field, component = m.groups()
    parts = [seg, "1", field or ""]
    if components and component:
        parts += ["1", component]
    return comp.join(parts)


def _err(verdict: Verdict, d: Delimiters, version: tuple[int, ...]) -> str:
    c, s = d.component, d.subcomponent
    text = escape((verdict.text or NAMES.get(verdict.code, ""))[:500], d)
    name = NAMES.get(verdict.code, "")
    if version < (2, 5):
        where = _location(verdict, c, components=False)
        return f"ERR{d.field}{where}{c}{verdict.code}{s}{escape(name, d)}{s}HL70357"
    severity = "W" if verdict.kind == "held" else "E"
    application = f"{verdict.reason}{c}{c}CGT" if verdict.reason else ""
    fields = ["ERR", "", _location(verdict, c), f"{verdict.code}{c}{escape(name, d)}{c}HL70357"]
    fields += [severity, application, "", "", text]
    return d.field.join(fields)


def render(
    header: Header | None,
    verdict: Verdict,
    *,
    control_id: str | None = None,
    application: bool = False,
    ask_accept: bool = False,
) -> bytes:
    """The ACK bytes (empty when enhanced mode's MSH-15 asks for none). `application`: the
    application acknowledgement (AA/AE/AR) that MSH-16 asks for; `ask_accept`: with MSH-15 AL,
    for an acknowledgement sent on a link of its own, where the receiver answers it."""
    enhanced = header is not None and header.enhanced and not application
    code = (_ENHANCED if enhanced else _ORIGINAL)[verdict.kind]
    if not application and not _wanted(header, code):
        return b""
    d = header.delimiters if header else Delimiters()
    echo = header.echo if header else ("", "", "", "")
    version = (header.version if header else "")[:10] or "2.5.1"
    v = _version(version)
    trigger = header.trigger[:3] if header else ""
    kind = "ACK" + (f"{d.component}{escape(trigger, d)}" if trigger else "")
    if trigger and v >= (2, 3, 1):
        kind += f"{d.component}ACK"
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    msh = [
        "MSH",
        d.encoding_characters,
        echo[2] or "CGT_GATEWAY",
        echo[3] or "CGT",
        echo[0],
        echo[1],
        now,
        "",
        kind,
        f"ACK{uuid.uuid4().hex[:17]}",
        escape((header.processing_id if header else "") or "P", d),
        escape(version, d),
    ]
    modes = ["", "", "AL", "NE"] if ask_accept else ["", "", "", ""]  # MSH-13..16
    if header and header.charset:
        msh += [*modes, "", escape(header.charset, d)]
    elif ask_accept:
        msh += modes
    # MSA-2 echoes MSH-10 as sent, spaces and all: some engines match ACKs byte for byte.
    if header and (control_id is None or control_id == header.control_id):
        acknowledged = header.control_id_sent
    else:
        acknowledged = escape(control_id or "", d)
    msa = ["MSA", code, acknowledged]
    if verdict.kind != "accept" and v < (2, 7):
        short = HELD if verdict.kind == "held" else verdict.text or ""
        msa.append(escape(short[:80], d))  # MSA-3 is 80 characters; ERR carries the whole text
    segments = [d.field.join(msh), d.field.join(msa)]
    if verdict.kind != "accept":
        segments.append(_err(verdict, d, v))
    codec = CHARSETS.get(header.charset, "utf-8") if header else "utf-8"
    return ("\r".join(segments) + "\r").encode(codec, "replace")
