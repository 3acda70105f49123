"""The carriers' wire shapes this dialect reads, by the name a partner's profile gives (`shape`):
how a webhook body reads (its id, when it has one, and its event) and how a polled API answer
reads (every event it lists). Each shape names the code table its codes are looked up in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapters.couriers.tracking import aftership, dhl, easypost, fedex, shippo, ups
from adapters.couriers.tracking.events import TrackEvent
from gateway.sdk import NotOurs

Webhook = Callable[[Any], tuple[str | None, TrackEvent] | NotOurs]
Poll = Callable[[Any], list[TrackEvent]]
NextPage = Callable[[Any], str | None]


@dataclass(frozen=True)
class Shape:
    name: str
    carrier: str  # its code table, mappings/couriers/status/<carrier>.yaml
    webhook: Webhook | None = None
    poll: Poll | None = None
    next_page: NextPage | None = None  # a polled answer's link to its next page, if it has one


def _ups_alert(document: Any) -> tuple[str | None, TrackEvent]:
    return None, ups.alert(document)  # Track Alert events carry no id: the event's key is one


SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        Shape("ups", "ups", webhook=_ups_alert, poll=ups.track_api),
        Shape("fedex", "fedex", poll=fedex.track_api),
        Shape("dhl", "dhl", poll=dhl.unified, next_page=dhl.next_page),
        Shape("easypost", "easypost", webhook=easypost.event),
        Shape("aftership", "aftership", webhook=aftership.webhook, poll=aftership.tracking),
        Shape("shippo", "shippo", webhook=shippo.webhook, poll=shippo.track),
    )
}
