"""HL7 batches (v2.5 §2.10.3): `[FHS] BHS {MSH ...} BTS [FTS]`, and several messages sent in one
MLLP frame without a batch header. Each message inside is taken on its own (stored, answered,
deduplicated by its own MSH-10); the answers travel back together, in order, in one frame:

    a batch in:              [FHS] BHS {its messages' ACKs: MSH MSA [ERR]} BTS [FTS]
    messages without BHS:    their ACKs one after the other, in one frame

One frame in, one frame out, so a sender that waits for an answer to each frame stays in step.
The answer batch holds the ACK of every message whose MSH-15 asks for one (original mode: all):
a batch of NE/NE messages is answered with an empty batch (BTS-1 = 0), which tells the sender
its batch arrived. BHS-12 (FHS-12) names the batch (file) answered, BTS-1 counts its ACKs.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapters.hl7v2.er7 import Delimiters, escape, read_delimiters
from gateway.sdk import MalformedMessage

_LINE = re.compile(rb"[^\r\n]+")
_ENVELOPE = (b"FHS", b"BHS", b"BTS", b"FTS")


@dataclass
class Batch:
    messages: list[bytes] = field(default_factory=list)  # each message's bytes, as received
    file_header: bytes | None = None  # the FHS line
    batch_header: bytes | None = None  # the (first) BHS line


def is_batch(payload: bytes) -> bool:
    """A batch envelope, or a second MSH segment, in one frame (cheap: two scans of the bytes)."""
    head = payload.lstrip(b"\r\n\t ")[:3]
    return head in (b"FHS", b"BHS") or b"\rMSH" in payload or b"\nMSH" in payload


def split(payload: bytes) -> Batch:
    """The messages of a batch frame. A segment before any MSH (not an envelope segment) makes
    a message of its own, which is then refused as having no MSH: nothing is dropped silently."""
    batch = Batch()
    start: int | None = None
    for m in _LINE.finditer(payload):
        name = payload[m.start() : m.start() + 3]
        if name in _ENVELOPE or name == b"MSH":
            if start is not None:
                batch.messages.append(payload[start : m.start()])
                start = None
            if name == b"FHS" and batch.file_header is None:
                batch.file_header = m.group()
            elif name == b"BHS" and batch.batch_header is None:
                batch.batch_header = m.group()
            if name == b"MSH":
                start = m.start()
        elif start is None:
            start = m.start()
    if start is not None:
        batch.messages.append(payload[start:])
    return batch


def _fields(line: bytes) -> tuple[Delimiters, list[str]]:
    """An FHS or BHS line's fields, numbered as the standard numbers them (FHS-1 is the separator)."""
    try:
        d = read_delimiters(b"MSH" + line[3:])
    except MalformedMessage:
        d = Delimiters()
    fields = line.decode("latin-1").split(d.field)
    fields.insert(1, d.field)
    return d, fields


def _header(name: str, line: bytes, now: str) -> tuple[Delimiters, str]:
    d, sent = _fields(line)

    def of(n: int) -> str:
        return sent[n] if n < len(sent) else ""

    fields = [name, d.encoding_characters, of(5) or "CGT_GATEWAY", of(6) or "CGT", of(3), of(4), now]
    fields += ["", "", "", f"{name[0]}{uuid.uuid4().hex[:18]}", escape(of(11), d)[:20]]
    return d, d.field.join(fields)


def answer(batch: Batch, acks: list[bytes]) -> bytes:
    """The batch acknowledgement: each ACK in order, inside the envelope the sender used."""
    body = b"".join(a if a.endswith(b"\r") else a + b"\r" for a in acks if a)
    if batch.batch_header is None and batch.file_header is None:
        return body
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    lines: list[str] = []
    d = Delimiters()
    if batch.file_header is not None:
        d, fhs = _header("FHS", batch.file_header, now)
        lines.append(fhs)
    if batch.batch_header is not None:
        d, bhs = _header("BHS", batch.batch_header, now)
    else:  # an FHS without a BHS: the file's single batch gets a header of its own in the answer
        bhs = d.field.join(["BHS", d.encoding_characters, "CGT_GATEWAY", "CGT", "", "", now])
    lines.append(bhs)
    head = ("\r".join(lines) + "\r").encode("latin-1")
    tail = f"BTS{d.field}{sum(1 for a in acks if a)}\r"
    if batch.file_header is not None:
        tail += f"FTS{d.field}1\r"
    return head + body + tail.encode("latin-1")
