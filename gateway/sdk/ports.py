"""The ports, as adapters see them (defined in gateway.ports)."""

from gateway.ports import (
    Crosswalk,
    Deliveries,
    Door,
    HasTransport,
    Orders,
    OrderView,
    Replays,
    Runtime,
    Secrets,
)

__all__ = [
    "Crosswalk",
    "Deliveries",
    "Door",
    "HasTransport",
    "OrderView",
    "Orders",
    "Replays",
    "Runtime",
    "Secrets",
]
