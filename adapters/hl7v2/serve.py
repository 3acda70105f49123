"""What `start_transport` starts: the MLLP listener and one outbound consumer per site that has one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.hl7v2.outbound import SiteOutbound
from adapters.hl7v2.transport import MllpListener
from gateway.partners import PartnerKind
from gateway.registry import Runtime

if TYPE_CHECKING:
    from adapters.hl7v2.adapter import Hl7v2


@dataclass
class Hl7v2Service:
    listener: MllpListener
    outbound: list[SiteOutbound] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.listener.port

    async def stop(self) -> None:
        await self.listener.stop()
        for site in self.outbound:
            await site.stop()


def _outbound_sites(adapter: Hl7v2, runtime: Runtime) -> list[SiteOutbound]:
    sites = []
    for partner in runtime.partners:
        if partner.kind is not PartnerKind.site or partner.auth.mllp is None:
            continue
        profile = adapter.profile_for(partner)  # ConfigError: a site on MLLP needs a valid profile
        if profile.outbound is not None:
            sites.append(SiteOutbound(runtime, partner, profile, profile.outbound, adapter.queue_prefix))
    return sites


async def start_hl7v2(adapter: Hl7v2, runtime: Runtime) -> Hl7v2Service:
    settings = runtime.settings
    sites = _outbound_sites(adapter, runtime)  # refuse to start on a bad profile before listening
    listener = MllpListener(
        adapter,
        runtime,
        frame_limit=adapter.frame_limit or settings.max_body_bytes,
        frame_seconds=adapter.read_timeout or settings.mllp_frame_seconds,
        outbound={site.partner.id: site for site in sites},
    )
    await listener.start(settings.http_host, settings.mllp_port)
    service = Hl7v2Service(listener, sites)
    for site in service.outbound:
        site.start()
    return service
