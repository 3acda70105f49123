"""MLLP framing (HL7 MLLP release 1): `0x0B payload 0x1C 0x0D`, as a sans-I/O reader.

Bytes outside a frame are skipped (and counted); a start block inside a frame starts the frame
again (the sender gave up on the partial one); a frame over the limit is read to its end and
reported as Oversize with its first bytes only, so the sender can be told and the stream goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

START = b"\x0b"
END = b"\x1c\x0d"
_END_BLOCK = 0x1C
HEAD = 4096  # bytes of an oversize frame kept: enough for its MSH, to answer it
DISCARD_LIMIT = 64  # an oversize frame more than this many limits long drops the connection


def frame(payload: bytes) -> bytes:
    return START + payload + END


@dataclass(frozen=True)
class Frame:
    payload: bytes


@dataclass(frozen=True)
class Oversize:
    head: bytes
    size: int


class FrameTooLong(Exception):
    """An oversize frame that does not end: the connection is dropped."""


class FrameReader:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.garbage = 0  # bytes skipped outside frames
        self.restarts = 0  # frames abandoned by a new start block
        self._buffer = bytearray()
        self._in_frame = False
        self._scanned = 0  # how much of the buffer is known to hold no end block
        self._oversize_head: bytes | None = None
        self._discarded = 0

    @property
    def mid_frame(self) -> bool:
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame | Oversize]:
        self._buffer += data
        out: list[Frame | Oversize] = []
        buf = self._buffer
        while buf:
            if not self._in_frame:
                start = buf.find(START)
                if start < 0:
                    self.garbage += len(buf)
                    buf.clear()
                    break
                self.garbage += start
                del buf[: start + 1]
                self._in_frame, self._scanned = True, 0
                continue
            restart = buf.find(START, self._scanned)
            end = buf.find(_END_BLOCK, self._scanned)
            if restart >= 0 and (end < 0 or restart < end):
                self.restarts += 1
                del buf[: restart + 1]
                self._scanned, self._oversize_head, self._discarded = 0, None, 0
                continue
            if end < 0 or end + 1 >= len(buf):
                self._hold(buf, end)
                break
            # 0x1C 0x0D ends the frame; a 0x1C followed by anything else ends it too (lenient).
            payload = bytes(buf[:end])
            del buf[: end + (2 if buf[end + 1] == 0x0D else 1)]
            self._in_frame, self._scanned = False, 0
            size = self._discarded + len(payload)
            if self._oversize_head is not None or size > self.limit:
                out.append(Oversize(self._oversize_head or payload[:HEAD], size))
                self._oversize_head, self._discarded = None, 0
            else:
                out.append(Frame(payload))
        return out

    def _hold(self, buf: bytearray, end: int) -> None:
        """No complete end block yet: keep waiting, but never hold more than the limit."""
        self._scanned = end if end >= 0 else len(buf)
        if len(buf) <= self.limit:
            return
        if self._oversize_head is None:
            self._oversize_head = bytes(buf[:HEAD])
        keep = 1 if end >= 0 else 0  # a trailing 0x1C may be half of the end block
        self._discarded += len(buf) - keep
        del buf[: len(buf) - keep]
        self._scanned = 0
        if self._discarded > DISCARD_LIMIT * self.limit:
            raise FrameTooLong(f"a frame over {DISCARD_LIMIT} x {self.limit} bytes without an end block")
