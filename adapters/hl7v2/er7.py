"""ER7 (pipe-and-hat) parsing on the hot path: bytes -> segments -> fields, escape-aware and lazy.

Fields are split when a message is parsed; components, repetitions and subcomponents only when a
value is asked for, and escape sequences are undone last, on the leaf, so an escaped separator
never splits anything. Character sets follow MSH-18; bad bytes are a MalformedMessage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from gateway.sdk import MalformedMessage, TooLarge, UnsupportedMessage

# HL7 table 0211 (and the spellings senders use) -> Python codec. UTF-16/32 cannot travel in MLLP
# frames (their bytes may contain the frame markers), so they are refused.
CHARSETS = {
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    **{f"8859/{n}": f"iso-8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
    **{f"ISO-8859-{n}": f"iso-8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
}
_SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_PATH = re.compile(r"^([A-Z][A-Z0-9]{2})[-.](\d{1,3})(?:\[(\d{1,3})\])?(?:\.(\d{1,3}))?(?:\.(\d{1,3}))?$")


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The message's separators, and the character set its \\Xhh\\ escapes are written in."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    charset: str = "utf-8"

    @property
    def encoding_characters(self) -> str:
        return f"{self.component}{self.repetition}{self.escape}{self.subcomponent}"


@dataclass(frozen=True, slots=True)
class FieldPath:
    """`PID-3`, `PID.3.1`, `PID-3[2].1.2`: segment, field, repetition (1-based; 0 = the first
    non-empty one), component and subcomponent (0 = the whole)."""

    segment: str
    field: int
    repetition: int = 0
    component: int = 0
    subcomponent: int = 0

    def __str__(self) -> str:
        out = f"{self.segment}-{self.field}"
        if self.repetition:
            out += f"[{self.repetition}]"
        if self.component:
            out += f".{self.component}"
        if self.subcomponent:
            out += f".{self.subcomponent}"
        return out


@lru_cache(maxsize=1024)
def field_path(path: str) -> FieldPath:
    m = _PATH.match(path.strip().upper())
    if not m:
        raise ValueError(f"not an HL7 field path: {path!r} (write e.g. PID-3, PID-3.1, PID-3[2].1)")
    seg, f, r, c, s = m.groups()
    return FieldPath(seg, int(f), int(r or 0), int(c or 0), int(s or 0))


class Segment:
    """One segment; `fields[n]` is field n as sent (escaped), for MSH too (MSH-1 is the separator)."""

    __slots__ = ("delimiters", "fields", "name")

    def __init__(self, name: str, fields: list[str], delimiters: Delimiters) -> None:
        self.name = name
        self.fields = fields
        self.delimiters = delimiters

    def raw(self, n: int) -> str:
        return self.fields[n] if n < len(self.fields) else ""

    def repetitions(self, n: int) -> list[str]:
        raw = self.raw(n)
        return raw.split(self.delimiters.repetition) if raw else []

    def value(self, n: int, component: int = 0, subcomponent: int = 0, repetition: int = 0) -> str:
        """The unescaped value at field n; HL7's explicit null `""` reads as empty."""
        raw = self.raw(n)
        if not raw:
            return ""
        d = self.delimiters
        if self.name == "MSH" and n <= 2:
            return raw
        if repetition:
            reps = raw.split(d.repetition)
            raw = reps[repetition - 1] if repetition <= len(reps) else ""
        elif d.repetition in raw:
            raw = next((r for r in raw.split(d.repetition) if r), "")
        return leaf(raw, d, component, subcomponent)

    def __repr__(self) -> str:  # names only: values may be patient data
        return f"Segment({self.name}, {len(self.fields) - 1} fields)"


def leaf(raw: str, d: Delimiters, component: int = 0, subcomponent: int = 0) -> str:
    """One component / subcomponent of a (single-repetition) value, unescaped."""
    if component:
        parts = raw.split(d.component)
        raw = parts[component - 1] if component <= len(parts) else ""
        if subcomponent:
            subs = raw.split(d.subcomponent)
            raw = subs[subcomponent - 1] if subcomponent <= len(subs) else ""
    raw = raw.strip()
    if raw == '""':
        return ""
    return unescape(raw, d) if d.escape in raw else raw


_NAMED = {"F": "field", "S": "component", "T": "subcomponent", "R": "repetition", "E": "escape"}


def unescape(value: str, d: Delimiters) -> str:
    """Undo HL7 escapes: \\F\\ \\S\\ \\T\\ \\R\\ \\E\\, \\Xhh..\\, \\.br\\; unknown ones stay literal."""
    esc = d.escape
    out: list[str] = []
    i = 0
    while True:
        j = value.find(esc, i)
        k = value.find(esc, j + 1) if j >= 0 else -1
        if j < 0 or k < 0:
            out.append(value[i:])
            return "".join(out)
        out.append(value[i:j])
        seq = value[j + 1 : k]
        if seq in _NAMED:
            out.append(getattr(d, _NAMED[seq]))
        elif seq.startswith("X") and len(seq) > 1:
            try:
                out.append(bytes.fromhex(seq[1:]).decode(d.charset))
            except (ValueError, UnicodeDecodeError):
                out.append(esc + seq + esc)
        elif seq in (".br", ".sp"):
            out.append("\n")
        elif seq in ("H", "N") or seq.startswith(("C", "M")):
            pass  # highlighting and character-set switches carry no text
        else:
            out.append(esc + seq + esc)
        i = k + 1


def escape(text: str, d: Delimiters) -> str:
    """The inverse of `unescape`, for values the gateway writes (ACK texts, outbound fields)."""
    e = d.escape
    out = text.replace(e, f"{e}E{e}")
    for char, code in ((d.field, "F"), (d.component, "S"), (d.repetition, "R"), (d.subcomponent, "T")):
        out = out.replace(char, f"{e}{code}{e}")
    return out.replace("\r", f"{e}X0D{e}").replace("\n", f"{e}.br{e}")


@dataclass(frozen=True, slots=True)
class Message:
    delimiters: Delimiters
    segments: tuple[Segment, ...]
    charset: str

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def first(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    def get(self, path: str | FieldPath) -> str:
        p = field_path(path) if isinstance(path, str) else path
        seg = self.first(p.segment)
        return seg.value(p.field, p.component, p.subcomponent, p.repetition) if seg else ""


def read_delimiters(raw: bytes) -> Delimiters:
    if len(raw) < 8 or raw[:3] != b"MSH":
        raise MalformedMessage("the message does not start with an MSH segment", location="MSH", code="100")
    field = chr(raw[3])
    end = raw.find(raw[3:4], 4)
    chars = raw[4:end].decode("ascii", "replace") if end > 0 else ""
    if (
        len(chars) not in (4, 5)
        or len(set(chars[:4] + field)) != 5
        or any(c.isalnum() for c in chars + field)
    ):
        raise MalformedMessage("MSH-1/MSH-2 do not declare usable delimiters", location="MSH-2", code="102")
    return Delimiters(field, chars[0], chars[1], chars[2], chars[3])


def codec_for(raw: bytes, d: Delimiters, default: str) -> tuple[str, str]:
    """(MSH-18 as sent, Python codec) from the first segment's bytes, before anything is decoded."""
    end = len(raw)
    for terminator in (b"\r", b"\n"):
        pos = raw.find(terminator)
        if 0 <= pos < end:
            end = pos
    fields = raw[:end].split(d.field.encode("latin-1"))
    declared = fields[17].split(d.repetition.encode("latin-1"))[0] if len(fields) > 17 else b""
    name = declared.decode("latin-1").strip().upper()
    if not name:
        return "", CHARSETS.get(default.upper(), "utf-8")
    codec = CHARSETS.get(name)
    if codec is None:
        raise UnsupportedMessage(
            f"character set {name[:40]!r} in MSH-18 is not supported", location="MSH-18", code="103"
        )
    return name, codec


BOM = b"\xef\xbb\xbf"
MAX_SEGMENTS, MAX_REPETITIONS = 1000, 100


def strip_lead(raw: bytes) -> bytes:
    """Without a UTF-8 byte-order mark (some Windows engines write one) and leading blank lines."""
    raw = raw.lstrip(b"\r\n\t ")
    return raw[3:].lstrip(b"\r\n\t ") if raw.startswith(BOM) else raw


def _too_many_repetitions(name: str, fields: list[str], d: Delimiters, cap: int) -> TooLarge:
    number, count = max(((n, f.count(d.repetition) + 1) for n, f in enumerate(fields)), key=lambda x: x[1])
    return TooLarge(
        f"{name}-{number} has {count} repetitions; at most {cap} are taken",
        location=f"{name}-{number}",
        code="207",
    )


def parse(
    raw: bytes,
    default_charset: str = "UTF-8",
    *,
    max_segments: int = MAX_SEGMENTS,
    max_repetitions: int = MAX_REPETITIONS,
) -> Message:
    """Parse one message. Segments end in CR; LF and CRLF are tolerated (test tools send them).
    A message of more segments, or a field of more repetitions, than the caps is refused before
    anything reads it: mapping is linear, but a 1 MiB PID-3 of 40,000 repetitions has no use."""
    raw = strip_lead(raw)
    d = read_delimiters(raw)
    _, codec = codec_for(raw, d, default_charset)
    d = replace(d, charset=codec)
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise MalformedMessage(
            f"the bytes are not valid {codec} (MSH-18)",
            detail=f"byte {exc.start}",
            location="MSH-18",
            code="102",
        ) from None
    lines = text.split("\r") if "\r" in text else text.split("\n")
    if len(lines) > max_segments and sum(1 for line in lines if line.strip("\n")) > max_segments:
        raise TooLarge(
            f"the message has more than {max_segments} segments; at most {max_segments} are taken",
            location="MSH",
            code="207",
        )
    segments: list[Segment] = []
    for number, line in enumerate(lines, start=1):
        line = line.strip("\n")
        if not line:
            continue
        name = line[:3]
        if not _SEGMENT_NAME.match(name) or (len(line) > 3 and line[3] != d.field):
            raise MalformedMessage(
                f"segment {number} has no valid segment name", location=f"segment {number}", code="100"
            )
        fields = line.split(d.field)
        if name == "MSH":
            fields.insert(1, d.field)
        if line.count(d.repetition) >= max_repetitions and any(
            f.count(d.repetition) >= max_repetitions for f in fields
        ):
            raise _too_many_repetitions(name, fields, d, max_repetitions)
        segments.append(Segment(name, fields, d))
    if segments[0].name != "MSH" or any(s.name == "MSH" for s in segments[1:]):
        raise MalformedMessage("one message, one MSH: batches are not taken", location="MSH", code="100")
    return Message(d, tuple(segments), codec)
