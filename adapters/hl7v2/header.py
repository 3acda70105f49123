"""The facts of a message's MSH that routing, partner recognition and the ACK need."""

from __future__ import annotations

from dataclasses import dataclass, replace

from adapters.hl7v2.er7 import Delimiters, Message, Segment, codec_for, read_delimiters, strip_lead
from gateway.sdk import MalformedMessage, UnsupportedMessage


@dataclass(frozen=True)
class Header:
    delimiters: Delimiters
    sending_application: str  # MSH-3.1
    sending_facility: str  # MSH-4.1
    echo: tuple[str, str, str, str]  # MSH-3..6 as sent (escaped), for the ACK's MSH-5..6 / 3..4
    message_type: str  # MSH-9.1
    trigger: str  # MSH-9.2
    control_id: str  # MSH-10, unescaped and trimmed: the message's id
    control_id_sent: str  # MSH-10 exactly as sent (spaces and escapes kept), echoed in MSA-2
    processing_id: str  # MSH-11.1
    version: str  # MSH-12.1
    accept_ack: str  # MSH-15: AL, NE, ER, SU
    application_ack: str  # MSH-16
    charset: str  # MSH-18, first repetition, as sent

    @property
    def kind(self) -> str:
        return f"{self.message_type}^{self.trigger}"

    @property
    def enhanced(self) -> bool:
        """Enhanced acknowledgement mode: MSH-15 or MSH-16 valued (HL7 v2 §2.9)."""
        return bool(self.accept_ack or self.application_ack)


def header_of(msh: Segment) -> Header:
    value = msh.value
    return Header(
        delimiters=msh.delimiters,
        sending_application=value(3, 1),
        sending_facility=value(4, 1),
        echo=(msh.raw(3), msh.raw(4), msh.raw(5), msh.raw(6)),
        message_type=value(9, 1).upper(),
        trigger=value(9, 2).upper(),
        control_id=value(10),
        control_id_sent=msh.raw(10),
        processing_id=value(11, 1).upper(),
        version=value(12, 1),
        accept_ack=value(15).upper(),
        application_ack=value(16).upper(),
        charset=value(18).upper(),
    )


def header(message: Message) -> Header:
    return header_of(message.msh)


def read_header(raw: bytes) -> Header | None:
    """The header of bytes that may not parse as a whole message (for the ACK of a bad frame).
    Reads the first line only, in MSH-18's character set where it can, and never fails."""
    raw = strip_lead(raw)
    end = min((p for p in (raw.find(b"\r"), raw.find(b"\n"), 4096) if p >= 0), default=4096)
    first = raw[:end]
    try:
        d = read_delimiters(first)
    except MalformedMessage:
        return None
    try:
        _, codec = codec_for(first, d, "UTF-8")
    except UnsupportedMessage:
        codec = "latin-1"
    fields = first.decode(codec, "replace").split(d.field)
    fields.insert(1, d.field)
    return header_of(Segment("MSH", fields, replace(d, charset=codec)))
