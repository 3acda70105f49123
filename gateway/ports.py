"""Ports: what an adapter may ask of the running gateway. Never a handle (no engine, no intake,
no table): the core implements these, tests may fake them.

    Door        accept one inbound message (store, reconcile, apply, answer after the commit)
    Crosswalk   read-only: are these identifiers known?
    Orders      read-only: a partner's view of the orders it is a party to
    Replays     a memory shared by replicas: has this (signed attempt) been seen before?
    Refusals    refused requests of known partners, kept raw within a cap
    Messages    read-only: a message a partner sent, as kept (an asynchronous protocol's job status)
    Deliveries  the outbound runner's ledger: what a destination has settled, and its alerts
    Secrets     keys the gateway makes for itself, and a replay memory (both shared by replicas)
    Polls       a poller's persisted schedule: what to ask a partner's API about, and when
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from gateway.adapter_contract import Adapter, Decoded, Running
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.ids import ExternalRef
from gateway.canonical.lifecycle import OrderStatus
from gateway.canonical.order import TherapyOrder
from gateway.claims import Claim
from gateway.errors import GatewayError
from gateway.outcome import Outcome
from gateway.partners import Partner, Partners
from gateway.settings import Settings


@dataclass(frozen=True)
class OrderView:
    """One order as a partner may see it: the order, and the identifiers of it (and of its
    patient) the partner may see: its own namespaces and the shared ones."""

    order: TherapyOrder
    refs: tuple[ExternalRef, ...]
    # The partner's own id of the message that placed the order (an acceptance answers it); the
    # outbound runner gives it to a render.
    placing_message_id: str | None = None


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
        request: object | None = None,
        decoded: Decoded | None = None,
        claim: Claim | None = None,
    ) -> tuple[Outcome, bytes | None]:
        """The message's outcome and the adapter's answer, once it is committed. `request`: the
        transport's view of the message, handed to `decode` as `InboundContext.request`.
        `decoded`: the adapter's decode of `raw` done beforehand (off the event loop, for a large
        message). `claim`: the signed attempt it came in, taken in the message's transaction;
        raises Replayed (nothing stored) when that attempt was taken before."""
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


@dataclass(frozen=True)
class KeptMessage:
    """One inbound message as the gateway kept it: what became of it (`status`: applied,
    quarantined or rejected; `error`: the error class), its raw bytes, and the answer it was given
    when that answer is kept (applied or quarantined under a message id)."""

    inbound_id: str
    adapter: str
    received_at: datetime
    status: str
    error: str | None
    raw: bytes
    answer: bytes | None


class Messages(Protocol):
    async def kept(self, partner: str, inbound_id: str) -> KeptMessage | None:
        """The message `inbound_id` if `partner` sent it; None otherwise (unknown, or another's)."""
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
    async def view(self, partner: Partner, order_id: str, *, prospective: bool = False) -> OrderView | None:
        """The order as `partner` may see it; None when it is unknown or not the partner's.
        `prospective`: also an order the partner is not a party to yet (a courier the gateway is
        about to book for a leg), still filtered by the partner's disclosure profile; the caller
        decides, from its own data, whether the order is the partner's to hear about."""
        ...

    async def find(self, partner: Partner, namespaces: Iterable[str], value: str) -> list[OrderView]:
        """The partner's orders one of whose identifiers in `namespaces` has `value`, oldest first."""
        ...


class Deliveries(Protocol):
    """What the outbound runner (gateway.sdk.outbound) keeps: the events each consumer has settled
    (delivered, skipped as not its own, or given up with an alert)."""

    async def settled(self, consumer: str, event_id: str) -> bool: ...

    async def settle(self, consumer: str, event_id: str) -> None:
        """Record the event as settled by `consumer` (again: no error)."""
        ...

    async def unsettled_before(
        self, consumer: str, event: CloudEvent, order_id: str, patterns: Sequence[str]
    ) -> set[str]:
        """The ids of the events of the order, committed before `event` and matching `patterns`,
        that the consumer has not settled yet: a later event waits for them."""
        ...

    async def give_up(
        self, consumer: str, event: CloudEvent, *, partner: str, adapter: str, attempts: int, reason: str
    ) -> None:
        """Raise `delivery.failed` about `event` and settle it, in one transaction."""
        ...

    async def placing_message(self, partner: Partner, order_id: str) -> str | None:
        """The partner's own id of the message by which it placed the order, if it did."""
        ...


class Secrets(Protocol):
    async def secret(self, name: str) -> str:
        """The gateway's own secret `name`: made by the first replica that asks, then shared."""
        ...

    async def first_use(self, holder: str, key: str, expires_at: datetime) -> bool:
        """Take `key` of `holder` (a client's assertion id) for good: False when any replica took it
        before. Keys are forgotten once expired (the holder refuses them by then anyway)."""
        ...


class Runtime(Protocol):
    """What an adapter's transports get from the running gateway: settings, partners, ports."""

    @property
    def settings(self) -> Settings: ...

    @property
    def partners(self) -> Partners: ...

    @property
    def door(self) -> Door: ...

    @property
    def crosswalk(self) -> Crosswalk: ...

    @property
    def orders(self) -> Orders: ...

    @property
    def replays(self) -> Replays: ...

    @property
    def refusals(self) -> Refusals: ...

    @property
    def secrets(self) -> Secrets: ...

    @property
    def deliveries(self) -> Deliveries: ...

    @property
    def polls(self) -> Polls: ...

    @property
    def messages(self) -> Messages: ...


class Refusals(Protocol):
    """Refused requests of known partners, kept raw within a cap (signed webhooks' 401s)."""

    async def keep(
        self, partner: str, adapter: str, transport: str, raw: bytes, content_type: str | None, reason: str
    ) -> bool:
        """Keep the raw request (False: over the partner's cap, counted only)."""
        ...


class Replays(Protocol):
    """A memory of what was seen, shared by every replica (signed webhooks' replay refusal)."""

    async def take(self, claim: Claim) -> bool:
        """True the first time the attempt is seen; False while an earlier sighting is kept (until
        its `expires_at`)."""
        ...


@runtime_checkable
class HasTransport(Protocol):
    """An adapter that listens or consumes on its own (MLLP server, outbound consumers)."""

    async def start_transport(self, runtime: Runtime) -> Running: ...


@dataclass(frozen=True)
class PollState:
    """One claimed row of a poller's schedule: what it asks about (`key`, e.g. a tracking number),
    the validators of the last answer, the digests of the events already taken, and how many
    polls in a row failed (for the backoff). `claim`: the lease this poller holds on it."""

    id: int
    poller: str
    partner: str
    key: str
    claim: str
    etag: str | None = None
    last_modified: str | None = None
    seen: tuple[str, ...] = ()
    last_event_at: datetime | None = None
    failures: int = 0


class Polls(Protocol):
    """A poller's schedule, persisted and shared by replicas: a row is polled by one replica at a
    time (claimed with a lease), and what was taken survives a restart."""

    async def enrol(self, poller: str, partner: str, namespace: str, now: datetime) -> int:
        """Schedule, due now, every identifier of `namespace` bound to an order still open and not
        scheduled yet; returns how many were added."""
        ...

    async def claim(
        self, poller: str, partner: str, *, limit: int, lease_s: float, now: datetime
    ) -> list[PollState]:
        """Up to `limit` due rows no other replica holds, leased to this caller for `lease_s`.
        Rows of orders that closed (infused, cancelled, failed) are retired on the way."""
        ...

    async def settle(
        self,
        state: PollState,
        *,
        next_at: datetime,
        etag: str | None,
        last_modified: str | None,
        seen: tuple[str, ...],
        last_event_at: datetime | None,
        failures: int,
        done: bool = False,
    ) -> bool:
        """Record a poll and release the row; False when the lease was lost meanwhile (another
        replica holds the row now, and its record wins)."""
        ...
