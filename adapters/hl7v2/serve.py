"""What `start_transport` starts: the MLLP listener and one outbound consumer per site that has one."""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.hl7v2.outbound import SiteOutbound
from adapters.hl7v2.profile import SiteProfile
from adapters.hl7v2.transport import MllpListener
from gateway.sdk import Adapter, PartnerKind, Profiles, Runtime


@dataclass(frozen=True)
class Options:
    read_timeout: float | None = None  # a frame's deadline; default: CGT_MLLP_FRAME_SECONDS
    frame_limit: int | None = None  # default: CGT_MAX_BODY_BYTES
    queue_prefix: str = "hl7v2"  # outbound queues: cgt.consumer.<prefix>.<partner>


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


def _outbound_sites(profiles: Profiles[SiteProfile], runtime: Runtime, prefix: str) -> list[SiteOutbound]:
    sites = []
    for partner in runtime.partners:
        if partner.kind is not PartnerKind.site or partner.auth.mllp is None:
            continue
        profile = profiles.for_partner(partner)
        if profile is not None and profile.outbound is not None:
            sites.append(SiteOutbound(runtime, partner, profile, profile.outbound, prefix))
    return sites


async def start_hl7v2(
    adapter: Adapter, profiles: Profiles[SiteProfile], runtime: Runtime, options: Options
) -> Hl7v2Service:
    settings = runtime.settings
    sites = _outbound_sites(profiles, runtime, options.queue_prefix)
    listener = MllpListener(
        adapter,
        profiles,
        runtime,
        frame_limit=options.frame_limit or settings.max_body_bytes,
        frame_seconds=options.read_timeout or settings.mllp_frame_seconds,
        outbound={site.partner.id: site for site in sites},
    )
    await listener.start(settings.http_host, settings.mllp_port)
    service = Hl7v2Service(listener, sites)
    for site in service.outbound:
        site.start()
    return service
