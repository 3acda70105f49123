"""What goes back for one message, as MSH-15 and MSH-16 ask.

The commit (or original-mode) ACK goes back on the message's connection. An application
acknowledgement that MSH-16 asks for (AA/AE/AR) goes on the site's outbound link when its profile
has one; otherwise on the connection, in place of the commit acknowledgement when MSH-15 wants
none (IHE LAB-28: NE/AL). When both are wanted and there is no outbound link, the commit
acknowledgement answers for both: the gateway has applied the message by the time it commits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from adapters.hl7v2 import ack as acks
from adapters.hl7v2.header import Header, read_header
from gateway.sdk import Partner

if TYPE_CHECKING:
    from adapters.hl7v2.outbound import SiteOutbound

log = logging.getLogger(__name__)


class Replies:
    def __init__(self, outbound: Mapping[str, SiteOutbound]) -> None:
        self.outbound = dict(outbound)  # partner id -> the site's outbound link
        self._sending: set[asyncio.Task[None]] = set()

    def reply(
        self,
        head: Header | None,
        verdict: acks.Verdict,
        partner: Partner | None,
        rendered: bytes | None = None,
        control_id: str | None = None,
    ) -> bytes:
        """The bytes for the connection (empty: nothing); an application ACK for the outbound
        link is sent from here, in the background (the message is committed already)."""
        if rendered is None:
            rendered = acks.render(head, verdict)
        if not acks.application_wanted(head, verdict):
            return rendered
        site = self.outbound.get(partner.id) if partner is not None else None
        application = acks.render(
            head, verdict, control_id=control_id, application=True, ask_accept=site is not None
        )
        if site is None:
            return rendered or application
        task = asyncio.create_task(self._send(site, application))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return rendered

    async def _send(self, site: SiteOutbound, application: bytes) -> None:
        head = read_header(application)
        assert head is not None
        try:
            await site.acknowledge(application, head.control_id)
        except Exception as exc:  # the link's own retries are spent: say so, never crash the listener
            log.warning(
                "MLLP to %s: application acknowledgement %s not delivered (%s)",
                site.partner.id,
                head.control_id,
                type(exc).__name__,
            )

    async def drain(self, grace: float) -> None:
        """Let application ACKs on their way finish (up to `grace`), then cancel the rest."""
        if not self._sending:
            return
        _, pending = await asyncio.wait(list(self._sending), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
