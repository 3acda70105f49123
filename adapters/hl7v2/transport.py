"""The MLLP listener (asyncio): frames in, each message handed to the gateway's door
(`runtime.door.accept`), the ACK out after the commit.

Many connections at once, many messages per connection (answered in order). A frame over the
limit is answered AR and skipped (the connection stays); a frame must end within the frame
deadline of its first byte, and a connection with no frame for the idle time is closed (no ACK:
the sender resends). Connections are capped in total and per source address, and what unknown
senders send is kept only within a quota (limits.py). A sender not in the partner registry
(MSH-3/MSH-4 and source address) gets AR and its message is kept as `unknown:mllp`
(`runtime.door.keep_unattributed`). Batches and several messages in one frame are taken message
by message (batch.py). Large frames are decoded (parsed and mapped) in a worker (offload.py), so
that one sender's heavy message does not hold up the event loop that every other sender, and
/health, wait on. Nothing a sender does - garbage, disconnects mid-frame, bad bytes, floods of
connections - stops the listener.

Acknowledgements follow MSH-15 and MSH-16 (replies.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections.abc import Mapping
from typing import TYPE_CHECKING

from adapters.hl7v2 import ack as acks
from adapters.hl7v2 import batch
from adapters.hl7v2.adt_filter import DROPPED, adt_patient_refs
from adapters.hl7v2.header import Header, read_header
from adapters.hl7v2.limits import CLOSED, ConnectionCaps, Throttled, UnknownSenderQuota
from adapters.hl7v2.mllp import Frame, FrameReader, FrameTooLong, Oversize, frame
from adapters.hl7v2.offload import Offload
from adapters.hl7v2.profile import SiteProfile
from adapters.hl7v2.replies import Replies
from adapters.hl7v2.routing import check_taken
from gateway.sdk import (
    Adapter,
    ConfigError,
    GatewayError,
    InboundContext,
    MalformedMessage,
    NotAuthenticated,
    Partner,
    Profiles,
    Runtime,
    TooLarge,
    TransientError,
    utcnow,
)

if TYPE_CHECKING:
    from adapters.hl7v2.outbound import SiteOutbound

log = logging.getLogger(__name__)
TRANSPORT = "mllp"
_INTERNAL = acks.Verdict("error", "207", None, "application internal error; retry later")


class MllpListener:
    def __init__(
        self,
        adapter: Adapter,
        profiles: Profiles[SiteProfile],
        runtime: Runtime,
        *,
        frame_limit: int,
        frame_seconds: float,
        outbound: Mapping[str, SiteOutbound] | None = None,
    ) -> None:
        settings = runtime.settings
        self.adapter = adapter
        self.profiles = profiles
        self.runtime = runtime
        self.frame_limit = frame_limit
        self.frame_seconds = frame_seconds
        self.idle_seconds = settings.mllp_idle_seconds
        self.replies = Replies(outbound or {})
        self.caps = ConnectionCaps(settings.mllp_max_connections, settings.mllp_max_connections_per_source)
        self.unknown = UnknownSenderQuota(
            max_bytes=settings.mllp_unknown_max_bytes,
            messages=settings.mllp_unknown_messages,
            volume=settings.mllp_unknown_volume_bytes,
            window=settings.mllp_unknown_window_seconds,
        )
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._busy: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._log = Throttled()
        self.offload = Offload(settings.mllp_offload, settings.mllp_offload_bytes)

    async def start(self, host: str, port: int) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        except OSError as exc:
            raise ConfigError(f"cannot listen for MLLP on {host}:{port}: {exc.strerror}") from exc
        log.info("MLLP listening on %s:%d", host, self.port)
        descriptors = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if descriptors != resource.RLIM_INFINITY and self.caps.total > descriptors // 2:
            log.warning(
                "CGT_MLLP_MAX_CONNECTIONS=%d is more than half the process's %d file descriptors:"
                " a flood of connections could leave none for the database, the broker and /health",
                self.caps.total,
                descriptors,
            )

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
        await self.replies.drain(grace)
        if self._server is not None:
            await self._server.wait_closed()
        self.offload.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if not self.caps.admit(address):
            writer.transport.abort()  # at once: a flood must not hold file descriptors
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        frames = FrameReader(self.frame_limit)
        try:
            await self._frames(reader, writer, frames, task, address)
        except FrameTooLong as exc:
            log.warning("MLLP %s: %s; connection dropped", address, exc)
        except (ConnectionError, OSError) as exc:
            log.info("MLLP %s: connection lost (%s)", address, type(exc).__name__)
        finally:
            self.caps.release(address)
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

    async def _frames(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        frames: FrameReader,
        task: asyncio.Task[None],
        address: str,
    ) -> None:
        """Read and answer frames until the sender leaves, idles, or is too slow with a frame.
        Both clocks are totals, not per read: bytes outside frames do not keep a connection
        alive, and a frame trickled a byte at a time still has to end by its deadline."""
        loop = asyncio.get_running_loop()
        idle_since = frame_started = loop.time()
        while not self._stopping:
            mid = frames.mid_frame
            deadline = frame_started + self.frame_seconds if mid else idle_since + self.idle_seconds
            try:
                async with asyncio.timeout_at(deadline):
                    data = await reader.read(65536)
            except TimeoutError:
                CLOSED.labels("frame_deadline" if mid else "idle").inc()
                if mid:  # throttled: a thousand trickling senders must not write a thousand lines
                    self._log.warning(
                        "frame-deadline",
                        "MLLP %s: a frame did not end within %.1f s; connection dropped",
                        address,
                        self.frame_seconds,
                    )
                else:
                    log.debug("MLLP %s: idle for %.1f s; connection closed", address, self.idle_seconds)
                return
            if not data:
                if frames.mid_frame:
                    log.warning("MLLP %s: the sender disconnected in the middle of a frame", address)
                return
            items = frames.feed(data)
            if frames.mid_frame and (items or not mid):
                frame_started = loop.time()  # a new frame began in this chunk
            for item in items:
                self._busy.add(task)
                try:
                    answer = await self._answer(item, address)
                finally:
                    self._busy.discard(task)
                if answer:
                    writer.write(frame(answer))
                    await writer.drain()
            if items:
                idle_since = loop.time()

    async def _answer(self, item: Frame | Oversize, address: str) -> bytes:
        if isinstance(item, Oversize):
            self._log.warning(
                "oversize",
                "MLLP %s: a frame of %d bytes is over the %d-byte limit; AR",
                address,
                item.size,
                self.frame_limit,
            )
            refusal = TooLarge(
                f"the frame is larger than {self.frame_limit} bytes", location="MSH", code="207"
            )
            return self.replies.reply(read_header(item.head), acks.verdict_of_error(refusal), None)
        if batch.is_batch(item.payload):
            return await self._batch(item.payload, address)
        return await self.receive(item.payload, address)

    async def _batch(self, payload: bytes, address: str) -> bytes:
        """A batch, or several messages in one frame: each taken in order; one answer frame."""
        received = batch.split(payload)
        answers = [await self.receive(message, address) for message in received.messages]
        log.info("MLLP %s: a frame of %d messages taken one by one", address, len(received.messages))
        return batch.answer(received, answers)

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
                return self.replies.reply(head, acks.ACCEPTED, partner)
            ctx = InboundContext(partner=partner, transport=TRANSPORT, received_at=utcnow())
            decoded = await self.offload.decode(
                payload, ctx, self.profiles.for_partner(partner), self.runtime.settings.log_phi
            )
            outcome, rendered = await self.runtime.door.accept(
                self.adapter,
                partner,
                payload,
                transport=TRANSPORT,
                content_type=self.adapter.content_type,
                received_at=ctx.received_at,
                decoded=decoded,
            )
            return self.replies.reply(
                head, acks.verdict_of(outcome), partner, rendered or b"", outcome.message_id
            )
        except TransientError as exc:
            log.warning("MLLP %s: transient failure (%s); AE, the sender retries", partner.id, exc.detail)
            return self.replies.reply(head, acks.verdict_of_error(exc), partner)
        except Exception:  # a bug must cost one message an AE, never the listener
            log.exception("MLLP %s: unexpected failure", partner.id)
            return self.replies.reply(head, _INTERNAL, partner)

    async def _patient_unknown(self, partner: Partner, head: Header, payload: bytes) -> bool:
        try:
            profile = self.profiles.for_partner(partner)
            if profile is None:
                return False
            check_taken(head, profile)
        except GatewayError:
            return False  # not for the filter to judge: stored and answered the normal way
        refs = await self.offload.run(len(payload), adt_patient_refs, payload, profile)
        return bool(refs) and not await self.runtime.crosswalk.any_known(refs)

    async def _keep_unattributed(
        self, payload: bytes, head: Header | None, exc: GatewayError, address: str
    ) -> bytes:
        if not self.unknown.keep(address, len(payload)):
            return self.replies.reply(head, acks.verdict_of_error(exc), None)  # over the quota: not stored
        try:
            outcome, rendered = await self.runtime.door.keep_unattributed(
                self.adapter.name,
                payload,
                exc,
                lambda o: acks.render(head, acks.verdict_of(o)),
                transport=TRANSPORT,
                content_type=self.adapter.content_type,
            )
        except TransientError as failure:
            return self.replies.reply(head, acks.verdict_of_error(failure), None)
        log.warning("MLLP %s: %s; kept as inbound %s", address, exc.detail, outcome.inbound_id)
        return self.replies.reply(head, acks.verdict_of(outcome), None, rendered or b"")
