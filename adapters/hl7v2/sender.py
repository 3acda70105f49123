"""The MLLP client for status messages to a site's EHR: connect and ACK timeouts, strict correlation.

An ACK counts only when its MSA-2 is the MSH-10 that was sent; any other ACK on the connection is
logged and ignored, never credited. As in camel-mllp, each way a delivery can fail is its own
exception, and the exception says what happens next:

    NotDelivered (TransientError)             no connection, connection lost: retried
    AcknowledgementTimeout (TransientError)   no matching ACK in time: retried
    RetryableNegativeAck (TransientError)     AE/CE (the profile's `retry_on`): retried
    NegativeAck (GatewayError)                AR/CR: dead-lettered at once, with an alert
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from adapters.hl7v2 import er7
from adapters.hl7v2.mllp import Frame, FrameReader, frame
from gateway.sdk import GatewayError, TransientError

log = logging.getLogger(__name__)
POSITIVE = ("AA", "CA")


class NotDelivered(TransientError):
    public_message = "the EHR's MLLP endpoint could not be reached"


class AcknowledgementTimeout(TransientError):
    public_message = "the EHR did not acknowledge the message in time"


class RetryableNegativeAck(TransientError):
    public_message = "the EHR answered with an application error; retrying"


class NegativeAck(GatewayError):
    public_message = "the EHR rejected the message"


def _acknowledgement(payload: bytes) -> tuple[str, str] | None:
    """(MSA-1, MSA-2) of an ACK frame, or None when it is not one."""
    try:
        message = er7.parse(payload, "UTF-8")
    except GatewayError:
        return None
    msa = message.first("MSA")
    return (msa.value(1).upper(), msa.value(2)) if msa else None


class MllpClient:
    """One persistent connection, one message at a time; reconnects after any failure."""

    def __init__(self, host: str, port: int, *, connect_timeout: float, ack_timeout: float) -> None:
        self.host, self.port = host, port
        self.connect_timeout, self.ack_timeout = connect_timeout, ack_timeout
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._frames = FrameReader(1_048_576)
        self.uncredited = 0  # ACKs that named another message

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            try:
                async with asyncio.timeout(self.connect_timeout):
                    self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            except (TimeoutError, OSError) as exc:
                raise NotDelivered(detail=f"connect {self.host}:{self.port}: {type(exc).__name__}") from None
            self._frames = FrameReader(1_048_576)
        return self._reader, self._writer

    async def exchange(self, message: bytes, control_id: str) -> str:
        """Send `message`; the MSA-1 code of the ACK whose MSA-2 is `control_id`."""
        async with self._lock:
            try:
                return await self._exchange(message, control_id)
            except BaseException:
                await self.close()  # the connection's state is unknown now: start afresh next time
                raise

    async def _exchange(self, message: bytes, control_id: str) -> str:
        reader, writer = await self._connect()
        try:
            writer.write(frame(message))
            await writer.drain()
        except (ConnectionError, OSError) as exc:
            raise NotDelivered(detail=f"send: {type(exc).__name__}") from None
        deadline = time.monotonic() + self.ack_timeout
        while True:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    data = await reader.read(65536)
            except TimeoutError:
                raise AcknowledgementTimeout(
                    detail=f"no ACK for {control_id} in {self.ack_timeout}s"
                ) from None
            except (ConnectionError, OSError) as exc:
                raise NotDelivered(detail=f"read: {type(exc).__name__}") from None
            if not data:
                raise NotDelivered(detail="the EHR closed the connection before acknowledging")
            for item in self._frames.feed(data):
                found = _acknowledgement(item.payload) if isinstance(item, Frame) else None
                if found is None:
                    log.warning(
                        "MLLP client %s:%d: a frame that is not an ACK, ignored", self.host, self.port
                    )
                elif found[1] != control_id:
                    self.uncredited += 1
                    log.warning(
                        "MLLP client %s:%d: an ACK for another message, not credited", self.host, self.port
                    )
                else:
                    return found[0]


async def send(client: MllpClient, message: bytes, control_id: str, retry_on: tuple[str, ...]) -> None:
    """One try: done when positively acknowledged; the exception says what comes next (the
    outbound runner retries a TransientError with backoff)."""
    code = await client.exchange(message, control_id)
    if code in POSITIVE:
        return
    if code not in retry_on:
        raise NegativeAck(f"the EHR answered {code[:2]}", detail=f"{control_id}: {code[:2]}")
    raise RetryableNegativeAck(f"the EHR answered {code[:2]}", detail=f"{control_id}: {code[:2]}")
