"""HL7 v2 data types the mappings read: timestamps (TS/DTM), names (XPN, XCN), identifiers (CX)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

from adapters.hl7v2.er7 import Segment, leaf
from gateway.sdk import MappingError

_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$")


def timestamp(value: str, tz: tzinfo, *, location: str) -> datetime | None:
    """A DTM (`YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]`); without an offset it is the site's local time."""
    if not value:
        return None
    m = _DTM.match(value)
    if not m:
        raise MappingError(f"{location} is not an HL7 date/time", location=location, code="102")
    y, mo, d, h, mi, s, frac, offset = m.groups()
    if offset:
        sign = -1 if offset[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
    try:
        return datetime(
            int(y),
            int(mo or 1),
            int(d or 1),
            int(h or 0),
            int(mi or 0),
            int(s or 0),
            int((frac or "0").ljust(6, "0")[:6]),
            tzinfo=tz,
        )
    except ValueError:
        raise MappingError(f"{location} is not a valid date/time", location=location, code="102") from None


def birth_date(value: str, *, location: str) -> date | None:
    if not value:
        return None
    if len(value) < 8 or not value[:8].isdigit():
        raise MappingError(f"{location} is not a full date (YYYYMMDD)", location=location, code="102")
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        raise MappingError(f"{location} is not a valid date", location=location, code="102") from None


@dataclass(frozen=True)
class Identifier:
    """One CX repetition: the value, its assigning authority (CX-4.1) and identifier type (CX-5)."""

    value: str
    authority: str
    type: str


def identifiers(segment: Segment | None, field: int) -> list[Identifier]:
    if segment is None:
        return []
    d = segment.delimiters
    out = []
    for rep in segment.repetitions(field):
        value = leaf(rep, d, 1)
        if value:
            out.append(Identifier(value, leaf(rep, d, 4, 1).upper(), leaf(rep, d, 5).upper()))
    return out


@dataclass(frozen=True)
class PersonName:
    family: str | None
    given: str | None

    @property
    def display(self) -> str | None:
        return " ".join(p for p in (self.given, self.family) if p) or None


def person_name(segment: Segment | None, field: int, *, offset: int = 0) -> PersonName | None:
    """An XPN (offset 0) or the name inside an XCN (offset 1); the legal name (type L) when repeated."""
    if segment is None:
        return None
    d = segment.delimiters
    reps = [r for r in segment.repetitions(field) if r.strip(d.component)]
    if not reps:
        return None
    name_type = 10 if offset else 7  # XPN-7 / XCN-10
    legal = next((r for r in reps if leaf(r, d, name_type).upper() == "L"), reps[0])
    # XPN-1 is a plain string in 2.3 and a composite (surname&prefix...) from 2.4: take its first part.
    family = leaf(legal, d, 1 + offset, 1) or None
    given = leaf(legal, d, 2 + offset) or None
    return PersonName(family, given)
