"""The MLLP listener (asyncio): frames in, one `accept()` per message, the ACK out after the commit.

Many connections at once, many messages per connection (answered in order). A frame over the
limit is answered AR and skipped (the connection stays); a half-sent frame idle for the read
timeout drops the connection (no ACK: the sender resends). A sender not in the partner registry
(MSH-3/MSH-4 and source address) gets AR and its message is stored as `unknown:mllp`. Nothing a
sender does - garbage, disconnects mid-frame, bad bytes - stops the listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from adapters.hl7v2 import ack as acks
from adapters.hl7v2.adt_filter import DROPPED, CrosswalkLookup, adt_patient_refs
from adapters.hl7v2.header import Header, read_header
from adapters.hl7v2.mllp import Frame, FrameReader, FrameTooLong, Oversize, frame
from adapters.hl7v2.routing import check_taken
from gateway.canonical.envelope import utcnow
from gateway.errors import (
    ConfigError,
    GatewayError,
    MalformedMessage,
    NotAuthenticated,
    TooLarge,
    TransientError,
)
from gateway.partners import Partner
from gateway.registry import Runtime
from gateway.service.inbound import accept
from gateway.service.intake import failed_decode
from gateway.store.repository import InboundRecord

if TYPE_CHECKING:
    from adapters.hl7v2.adapter import Hl7v2

log = logging.getLogger(__name__)
TRANSPORT = "mllp"
UNKNOWN_SENDER = "unknown:mllp"  # not a valid partner id, so it never names a real partner
_INTERNAL = acks.Verdict("error", "207", None, "application internal error; retry later")


class MllpListener:
    def __init__(self, adapter: Hl7v2, runtime: Runtime, *, frame_limit: int, read_timeout: float) -> None:
        self.adapter = adapter
        self.runtime = runtime
        self.frame_limit = frame_limit
        self.read_timeout = read_timeout
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._busy: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.crosswalk = CrosswalkLookup(runtime.engine)

    async def start(self, host: str, port: int) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        except OSError as exc:
            raise ConfigError(f"cannot listen for MLLP on {host}:{port}: {exc.strerror}") from exc
        log.info("MLLP listening on %s:%d", host, self.port)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting; let messages being processed finish (up to `grace`), then close."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task, writer in list(self._connections.items()):
            if task not in self._busy:
                writer.close()  # an idle connection: its read ends, and so does its task
        if self._connections:
            _, pending = await asyncio.wait(list(self._connections), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        await self.crosswalk.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        frames = FrameReader(self.frame_limit)
        try:
            while not self._stopping:
                try:
                    async with asyncio.timeout(self.read_timeout if frames.mid_frame else None):
                        data = await reader.read(65536)
                except TimeoutError:
                    log.warning(
                        "MLLP %s: a half-sent frame was idle %.1f s; connection dropped",
                        address,
                        self.read_timeout,
                    )
                    break
                if not data:
                    if frames.mid_frame:
                        log.warning("MLLP %s: the sender disconnected in the middle of a frame", address)
                    break
                for item in frames.feed(data):
                    self._busy.add(task)
                    try:
                        answer = await self._answer(item, address)
                    finally:
                        self._busy.discard(task)
                    if answer:
                        writer.write(frame(answer))
                        await writer.drain()
        except FrameTooLong as exc:
            log.warning("MLLP %s: %s; connection dropped", address, exc)
        except (ConnectionError, OSError) as exc:
            log.info("MLLP %s: connection lost (%s)", address, type(exc).__name__)
        finally:
            if frames.garbage or frames.restarts:
                log.info(
                    "MLLP %s: %d bytes outside frames, %d abandoned frames",
                    address,
                    frames.garbage,
                    frames.restarts,
                )
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer(self, item: Frame | Oversize, address: str) -> bytes:
        if isinstance(item, Oversize):
            log.warning(
                "MLLP %s: a frame of %d bytes is over the %d-byte limit; AR",
                address,
                item.size,
                self.frame_limit,
            )
            refusal = TooLarge(
                f"the frame is larger than {self.frame_limit} bytes", location="MSH", code="207"
            )
            return acks.render(read_header(item.head), acks.verdict_of_error(refusal))
        return await self.receive(item.payload, address)

    async def receive(self, payload: bytes, address: str) -> bytes:
        """One message from `address`: the rendered ACK (empty when enhanced mode wants none)."""
        if self.runtime.settings.log_phi:
            log.debug("MLLP %s frame: %r", address, payload[:4000])
        head = read_header(payload)
        try:
            if head is None:
                raise MalformedMessage("not an HL7 v2 message: no MSH segment", location="MSH", code="100")
            partner = self.runtime.partners.by_mllp(head.sending_application, head.sending_facility, address)
        except (NotAuthenticated, MalformedMessage) as exc:
            return await self._keep_unattributed(payload, head, exc, address)
        try:
            if head.message_type == "ADT" and await self._patient_unknown(partner, head, payload):
                DROPPED.labels(partner.id).inc()
                return acks.render(head, acks.ACCEPTED)
            _, rendered = await accept(
                self.runtime.intake,
                self.adapter.answering(payload),
                partner,
                payload,
                transport=TRANSPORT,
                content_type=self.adapter.content_type,
            )
            return rendered or b""
        except TransientError as exc:
            log.warning("MLLP %s: transient failure (%s); AE, the sender retries", partner.id, exc.detail)
            return acks.render(head, acks.verdict_of_error(exc))
        except Exception:  # a bug must cost one message an AE, never the listener
            log.exception("MLLP %s: unexpected failure", partner.id)
            return acks.render(head, _INTERNAL)

    async def _patient_unknown(self, partner: Partner, head: Header, payload: bytes) -> bool:
        try:
            profile = self.adapter.profile_for(partner)
            check_taken(head, profile)
        except GatewayError:
            return False  # not for the filter to judge: stored and answered the normal way
        refs = adt_patient_refs(payload, profile)
        return bool(refs) and not await self.crosswalk.any_known(refs)

    async def _keep_unattributed(
        self, payload: bytes, head: Header | None, exc: GatewayError, address: str
    ) -> bytes:
        record = InboundRecord(
            partner=UNKNOWN_SENDER,
            transport=TRANSPORT,
            adapter=self.adapter.name,
            message_id=None,
            received_at=utcnow(),
            content_type=self.adapter.content_type,
            raw=payload,
        )
        try:
            outcome, rendered = await self.runtime.intake.receive(
                record, failed_decode(exc), lambda o: acks.render(head, acks.verdict_of(o))
            )
        except TransientError as failure:
            return acks.render(head, acks.verdict_of_error(failure))
        log.warning("MLLP %s: %s; kept as inbound %s", address, exc.detail, outcome.inbound_id)
        return rendered or b""
