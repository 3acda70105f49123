"""Ports: what an adapter may ask of the running gateway. Never a handle (no engine, no intake,
no table): the core implements these, tests may fake them.

    Door        accept one inbound message (store, reconcile, apply, answer after the commit)
    Crosswalk   read-only: are these identifiers known?
    Orders      read-only: a partner's view of the orders it is a party to
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from gateway.canonical.ids import ExternalRef
from gateway.canonical.lifecycle import OrderStatus
from gateway.canonical.order import TherapyOrder
from gateway.errors import GatewayError
from gateway.partners import Partner, Partners
from gateway.service.outcome import Outcome
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.sdk.contract import Adapter, Decoded


@dataclass(frozen=True)
class OrderView:
    """One order as a partner may see it: the order, and the identifiers of it (and of its
    patient) the partner may see: its own namespaces and the shared ones."""

    order: TherapyOrder
    refs: tuple[ExternalRef, ...]


class Door(Protocol):
    async def accept(
        self,
        adapter: Adapter,
        partner: Partner,
        raw: bytes,
        *,
        transport: str,
        content_type: str | None = None,
        received_at: datetime | None = None,
        decoded: Decoded | None = None,
    ) -> tuple[Outcome, bytes | None]:
        """The message's outcome and the adapter's answer, once it is committed. `decoded`: the
        adapter's decode of `raw` done beforehand (off the event loop, for a large message)."""
        ...

    async def keep_unattributed(
        self,
        adapter: str,
        raw: bytes,
        error: GatewayError,
        answer: Callable[[Outcome], bytes],
        *,
        transport: str,
        content_type: str | None = None,
    ) -> tuple[Outcome, bytes | None]:
        """Keep a message no partner can be named for (an unknown sender), refused with `error`."""
        ...


class Crosswalk(Protocol):
    async def any_known(self, refs: Iterable[ExternalRef]) -> bool:
        """Whether any of the identifiers is bound to a patient or an order."""
        ...

    async def bound(self, refs: Iterable[ExternalRef]) -> set[ExternalRef]:
        """Those of the identifiers bound to a patient or an order."""
        ...

    async def statuses(self, refs: Iterable[ExternalRef]) -> dict[ExternalRef, OrderStatus]:
        """The status of the order each identifier is bound to (absent: bound to none)."""
        ...


class Orders(Protocol):
    async def view(self, partner: Partner, order_id: str) -> OrderView | None:
        """The order as `partner` may see it; None when it is unknown or not the partner's."""
        ...

    async def find(self, partner: Partner, namespaces: Iterable[str], value: str) -> list[OrderView]:
        """The partner's orders one of whose identifiers in `namespaces` has `value`, oldest first."""
        ...


class Runtime(Protocol):
    """What an adapter's transports get from the running gateway: settings, partners, ports."""

    settings: Settings
    partners: Partners
    door: Door
    crosswalk: Crosswalk
    orders: Orders
