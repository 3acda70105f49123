"""What makes two HL7 v2 messages under one MSH-10 the same message sent twice: the same bytes,
but for what carries no meaning in ER7 or on the wire: MLLP framing, a UTF-8 byte order mark,
CRLF or LF for the segment terminator CR, and empty or trailing segment terminators."""

from __future__ import annotations

import re

_BOM = b"\xef\xbb\xbf"
_TERMINATORS = re.compile(rb"\r+")


def fingerprint(raw: bytes) -> bytes:
    body = raw.removeprefix(b"\x0b").removesuffix(b"\x1c\r").removesuffix(b"\x1c").removeprefix(_BOM)
    if b"\n" in body:  # most senders use CR alone: a scan, not a copy, for them
        body = body.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    if b"\r\r" in body:
        body = _TERMINATORS.sub(b"\r", body)
    return body.strip(b"\r")
