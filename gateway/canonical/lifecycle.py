"""The autologous therapy-order lifecycle: which status each event moves an order to, and from where."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    ordered = "ordered"
    collection_scheduled = "collection_scheduled"
    collected = "collected"
    in_transit_to_manufacturer = "in_transit_to_manufacturer"
    received_by_manufacturer = "received_by_manufacturer"
    in_manufacturing = "in_manufacturing"
    released = "released"
    in_transit_to_site = "in_transit_to_site"
    delivered_to_site = "delivered_to_site"
    infused = "infused"
    on_hold = "on_hold"
    cancelled = "cancelled"
    failed = "failed"


S = OrderStatus
TERMINAL = frozenset({S.infused, S.cancelled, S.failed})
ACTIVE = frozenset(S) - TERMINAL - {S.on_hold}

# target status -> the statuses it may be reached from. A status may repeat itself where the
# domain repeats the message (a collection rescheduled), never elsewhere.
ALLOWED_FROM: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.collection_scheduled: frozenset({S.ordered, S.collection_scheduled}),
    S.collected: frozenset({S.ordered, S.collection_scheduled}),
    S.in_transit_to_manufacturer: frozenset({S.collected}),
    # The courier's delivery scan and the manufacturer's receipt both confirm arrival.
    S.received_by_manufacturer: frozenset(
        {S.collected, S.in_transit_to_manufacturer, S.received_by_manufacturer}
    ),
    S.in_manufacturing: frozenset({S.received_by_manufacturer}),
    S.released: frozenset({S.in_manufacturing}),
    # The manufacturer's "shipped" and the courier's pickup scan both confirm departure.
    S.in_transit_to_site: frozenset({S.released, S.in_transit_to_site}),
    S.delivered_to_site: frozenset({S.in_transit_to_site}),
    S.infused: frozenset({S.delivered_to_site}),
    S.on_hold: ACTIVE,
    S.cancelled: ACTIVE | {S.on_hold},
    S.failed: ACTIVE | {S.on_hold},
}


def transition_refusal(current: OrderStatus, target: OrderStatus) -> str | None:
    """Why `current -> target` is illegal, or None when it is allowed."""
    allowed = ALLOWED_FROM.get(target)
    if allowed is None:
        return f"no event moves an order to {target.value}"
    if current not in allowed:
        return f"an order that is {current.value} cannot become {target.value}"
    return None


def refusal_without_transition(current: OrderStatus) -> str | None:
    """Events that change no status still need a live order."""
    if current in TERMINAL:
        return f"the order is {current.value}; it takes no further events"
    return None
