"""What every message mapping needs: order groups, field picks by path, coded values, parties, notes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from adapters.hl7v2.er7 import FieldPath, Message, Segment, field_path, leaf
from adapters.hl7v2.profile import SiteProfile
from adapters.hl7v2.values import person_name
from gateway.sdk import Party

NOTES_LIMIT = 2000


def groups(message: Message, start: str) -> tuple[list[Segment], list[list[Segment]]]:
    """The segments before the first `start` segment, and one group per `start` segment."""
    head: list[Segment] = []
    out: list[list[Segment]] = []
    for segment in message.segments:
        if segment.name == start:
            out.append([segment])
        elif out:
            out[-1].append(segment)
        else:
            head.append(segment)
    return head, out


def _first(scope: Sequence[Segment], name: str) -> Segment | None:
    return next((s for s in scope if s.name == name), None)


def _located(
    paths: Sequence[str], scopes: Sequence[Sequence[Segment]]
) -> Iterator[tuple[FieldPath, Segment]]:
    """Each path's segment in each scope, in the order a mapping prefers them."""
    for path in paths:
        p = field_path(path)
        for scope in scopes:
            segment = _first(scope, p.segment)
            if segment is not None:
                yield p, segment


def pick(paths: Sequence[str], *scopes: Sequence[Segment]) -> tuple[str, str]:
    """The first non-empty value among `paths`, looked up in each scope in turn; and its path."""
    for p, segment in _located(paths, scopes):
        value = segment.value(p.field, p.component, p.subcomponent, p.repetition)
        if value:
            return value, f"{p.segment}-{p.field}"
    return "", ""


@dataclass(frozen=True)
class Coded:
    """A CE / CWE value: code, text, coding system."""

    code: str
    text: str
    system: str
    location: str


def coded(paths: Sequence[str], *scopes: Sequence[Segment]) -> Coded | None:
    for p, segment in _located(paths, scopes):
        rep = next((r for r in segment.repetitions(p.field) if r), "")
        d = segment.delimiters
        code = leaf(rep, d, p.component or 1)
        if code:
            text = "" if p.component else leaf(rep, d, 2)
            system = "" if p.component else leaf(rep, d, 3)
            return Coded(code, text, system.upper(), f"{p.segment}-{p.field}")
    return None


def valued(paths: Sequence[str], *scopes: Sequence[Segment]) -> bool:
    """Whether any of `paths` carries anything at all (a code, or only a text)."""
    for p, segment in _located(paths, scopes):
        d = segment.delimiters
        if segment.raw(p.field).strip(d.component + d.repetition + d.subcomponent + " "):
            return True
    return False


def party(paths: Sequence[str], *scopes: Sequence[Segment]) -> Party | None:
    """A person by XCN: the id (XCN-1) and a display name; None when no id is given."""
    for p, segment in _located(paths, scopes):
        ident = segment.value(p.field, 1)
        if ident:
            name = person_name(segment, p.field, offset=1)
            return Party(id=ident[:200], name=(name.display or "")[:200] or None if name else None)
    return None


def notes(profile: SiteProfile, *scopes: Sequence[Segment]) -> str | None:
    """NTE-3 comments, and Z-segments the profile keeps as notes (`ZXX: value | value`)."""
    lines: list[str] = []
    for scope in scopes:
        for segment in scope:
            if segment.name == "NTE":
                lines.extend(v for v in (leaf(r, segment.delimiters) for r in segment.repetitions(3)) if v)
            elif segment.name.startswith("Z") and profile.z_segments.get(segment.name) == "notes":
                values = [leaf(f, segment.delimiters) for f in segment.fields[1:]]
                kept = " | ".join(v for v in values if v)
                if kept:
                    lines.append(f"{segment.name}: {kept}")
    text = "\n".join(lines)
    return text[:NOTES_LIMIT] or None
