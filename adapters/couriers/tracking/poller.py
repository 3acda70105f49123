"""Polling couriers without webhooks: a task in the serving process that asks each polled
partner's tracking API about every shipment booked with it, on a schedule kept in the database
(the Polls port, table poll_schedule):

- which shipments: every tracking number bound in the partner's namespace to an open order is
  enrolled; a shipment is polled until its carrier says delivered or its order closes;
- when: each row's `next_at`; `interval_s` of the partner's profile apart, with jitter; after a
  failure, exponential backoff with jitter (`CGT_TRACKING_POLL_MAX_BACKOFF_S` at most); after a
  429 or 503, not before the server's Retry-After;
- conditional requests: the last answer's ETag / Last-Modified go back as If-None-Match /
  If-Modified-Since; a 304 is nothing new;
- pages: an answer that links a next page (DHL's `nextUrl`) is read to its end, on the API's own
  origin only;
- once only: the digests of the events handed to the door are kept with the row, so an event is
  taken once across restarts (and the door's idempotency on the event's key answers a repeat);
- replicas: a row is claimed with a lease before it is polled, so two never poll it at once.

Each new event goes through the door as the webhooks' do (`door.accept`, transport `poll`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.couriers.tracking.codes import CodeTable
from adapters.couriers.tracking.events import TrackEvent, newest_first
from adapters.couriers.tracking.fetch import (
    Answer,
    Failed,
    Fresh,
    SlowDown,
    Unchanged,
    fetch,
    request_for,
    with_pages,
)
from adapters.couriers.tracking.mapping import tracking_namespace
from adapters.couriers.tracking.profile import PollApi, TrackingProfile
from adapters.couriers.tracking.shapes import SHAPES
from gateway.sdk import (
    Adapter,
    BearerTokens,
    ConfigError,
    GatewayError,
    MalformedMessage,
    Partner,
    PollState,
    Profiles,
    Runtime,
    TokenUnavailable,
    TransientError,
    bearer_tokens,
    utcnow,
)

log = logging.getLogger(__name__)
KEPT_DIGESTS = 500  # events remembered a shipment: far more than a journey has


class PollSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CGT_TRACKING_POLL_", extra="ignore")

    enabled: bool = True
    tick_s: float = 5.0  # how often the schedule is looked at for due rows
    concurrency: int = 4  # requests in flight, per process
    batch: int = 50  # rows claimed at a time, per partner
    lease_s: float = 120.0  # a claim outlives a slow poll, not a dead replica
    timeout_s: float = 20.0
    max_backoff_s: float = 3600.0
    enrol_every_s: float = 30.0


@dataclass
class Polled:
    partner: Partner
    profile: TrackingProfile
    api: PollApi
    secrets: dict[str, str]
    tokens: BearerTokens | None = None  # when the API issues bearer tokens


@dataclass
class TrackingPoller:
    runtime: Runtime
    adapter: Adapter
    tables: dict[str, CodeTable]
    polled: list[Polled]
    settings: PollSettings = field(default_factory=PollSettings)
    clock: Callable[[], datetime] = utcnow
    jitter: Callable[[], float] = random.random
    client: httpx.AsyncClient | None = None
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _enrolled_at: float = float("-inf")

    @classmethod
    def for_runtime(
        cls,
        runtime: Runtime,
        adapter: Adapter,
        profiles: Profiles[TrackingProfile],
        tables: dict[str, CodeTable],
    ) -> TrackingPoller:
        """A poller for every partner of the adapter whose profile says how to poll it."""
        production = runtime.partners.production
        polled = []
        for partner in runtime.partners:
            profile = profiles.for_partner(partner) if partner.speaks(adapter.name) else None
            if profile is not None and profile.poll is not None:
                secrets = {h: ref.resolve(production) for h, ref in profile.poll.secret_headers.items()}
                unset = sorted(h for h, value in secrets.items() if value is None)
                if unset:
                    raise ConfigError(
                        f"{adapter.name}: {partner.id}'s poll headers {', '.join(unset)} are unset"
                    )
                given = {h: value for h, value in secrets.items() if value is not None}
                tokens = None
                if profile.poll.oauth is not None:
                    tokens = bearer_tokens(profile.poll.oauth, production)
                    if tokens is None:
                        raise ConfigError(
                            f"{adapter.name}: {partner.id}'s OAuth client id or secret is unset"
                        )
                polled.append(Polled(partner, profile, profile.poll, given, tokens))
        return cls(runtime, adapter, tables, polled)

    async def start(self) -> TrackingPoller:
        if self.polled and self.settings.enabled:
            self.client = self.client or httpx.AsyncClient(timeout=self.settings.timeout_s)
            self._task = asyncio.create_task(self._run(), name="carrier-tracking-poller")
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.client is not None:
            await self.client.aclose()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.sweep()
            except TransientError as exc:
                log.warning("carrier tracking poller: %s", exc.detail)
            except Exception:  # a defect must not stop the polling of every other shipment
                log.exception("carrier tracking poller: the sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.tick_s)

    async def sweep(self) -> int:
        """One pass: enrol new shipments, claim the due ones, poll them. Returns the events taken."""
        now = self.clock()
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._enrolled_at >= self.settings.enrol_every_s:
            for one in self.polled:
                await self.runtime.polls.enrol(
                    self.adapter.name, one.partner.id, tracking_namespace(one.partner), now
                )
            self._enrolled_at = loop_time
        gate = asyncio.Semaphore(self.settings.concurrency)
        jobs = []
        for one in self.polled:
            claimed = await self.runtime.polls.claim(
                self.adapter.name,
                one.partner.id,
                limit=self.settings.batch,
                lease_s=self.settings.lease_s,
                now=now,
            )
            jobs += [self._gated(gate, one, state) for state in claimed]
        return sum(await asyncio.gather(*jobs))

    async def _gated(self, gate: asyncio.Semaphore, one: Polled, state: PollState) -> int:
        async with gate:
            return await self.poll(one, state)

    def _backoff(self, one: Polled, failures: int, floor_s: float = 0.0) -> datetime:
        """Exponential, capped, with equal jitter: half the delay fixed, half random."""
        delay = min(self.settings.max_backoff_s, one.api.interval_s * 2 ** min(failures, 30))
        delay = delay / 2 + self.jitter() * delay / 2
        return self.clock() + timedelta(seconds=max(delay, floor_s))

    def _next(self, one: Polled) -> datetime:
        return self.clock() + timedelta(seconds=one.api.interval_s * (0.9 + 0.2 * self.jitter()))

    async def _again(
        self, state: PollState, next_at: datetime, failures: int, seen: tuple[str, ...] | None = None
    ) -> None:
        """Settle a poll that took nothing new: the row keeps its validators (none after a
        partial take, so that the next answer is read whole) and its cursor."""
        partial = seen is not None
        await self.runtime.polls.settle(
            state,
            next_at=next_at,
            etag=None if partial else state.etag,
            last_modified=None if partial else state.last_modified,
            seen=seen if seen is not None else state.seen,
            last_event_at=state.last_event_at,
            failures=failures,
        )

    async def poll(self, one: Polled, state: PollState) -> int:
        """Poll one shipment; returns how many new events went through the door."""
        assert self.client is not None, "start the poller first"
        answer = await self._ask(one, state)
        if isinstance(answer, Failed) and answer.status == 401 and one.tokens is not None:
            one.tokens.invalidate()  # revoked or expired early: one more try with a new token
            answer = await self._ask(one, state)
        if isinstance(answer, Unchanged):
            await self._again(state, self._next(one), 0)
            return 0
        if isinstance(answer, SlowDown | Failed):
            failures = state.failures + 1
            floor = (answer.retry_after_s or 0.0) if isinstance(answer, SlowDown) else 0.0
            reason = "slow down" if isinstance(answer, SlowDown) else answer.reason
            log.info("carrier tracking poll %s: %s (failure %d)", one.partner.id, reason, failures)
            await self._again(state, self._backoff(one, failures, floor), failures)
            return 0
        return await self._take(one, state, answer)

    async def _ask(self, one: Polled, state: PollState) -> Answer:
        assert self.client is not None
        headers = dict(one.secrets)
        if one.tokens is not None:
            try:
                headers |= await one.tokens.header(self.client)
            except TokenUnavailable as exc:
                return Failed(exc.detail)
        request = request_for(one.api, state.key, headers, state.etag, state.last_modified)
        answer = await fetch(self.client, request, self.clock())
        next_page = SHAPES[one.profile.shape].next_page
        if not isinstance(answer, Fresh) or next_page is None:
            return answer
        return await with_pages(self.client, one.api, answer, headers, next_page, self.clock())

    async def _take(self, one: Polled, state: PollState, answer: Fresh) -> int:
        shape = SHAPES[one.profile.shape]
        assert shape.poll is not None
        try:
            events = [
                e for page in answer.documents for e in shape.poll(page) if e.tracking_number == state.key
            ]
        except MalformedMessage as exc:
            log.warning("carrier tracking poll %s: %s", one.partner.id, exc.public_message)
            await self._again(state, self._backoff(one, state.failures + 1), state.failures + 1)
            return 0
        seen, taken, delivered = list(state.seen), 0, False
        table = self.tables[shape.carrier]
        for event in reversed(newest_first(events)):  # oldest first: the order's lifecycle
            delivered |= table.resolve(event.codes) == "shipment.delivered"
            if event.digest in seen:
                continue
            try:
                await self._hand_in(one, event)
            except GatewayError as exc:  # the door could not commit: this event and later wait
                log.warning("carrier tracking poll %s: %s", one.partner.id, exc.public_message)
                failures = state.failures + 1
                await self._again(state, self._backoff(one, failures), failures, tuple(seen[-KEPT_DIGESTS:]))
                return taken
            seen.append(event.digest)
            taken += 1
        latest = max((e.occurred_at for e in events if e.occurred_at), default=state.last_event_at)
        await self.runtime.polls.settle(
            state,
            next_at=self._next(one),
            etag=answer.etag,
            last_modified=answer.last_modified,
            seen=tuple(seen[-KEPT_DIGESTS:]),
            last_event_at=latest,
            failures=0,
            done=delivered,
        )
        return taken

    async def _hand_in(self, one: Polled, event: TrackEvent) -> None:
        raw = event.model_dump_json(exclude_none=True).encode()
        outcome, _ = await self.runtime.door.accept(
            self.adapter,
            one.partner,
            raw,
            transport="poll",
            content_type="application/json",
        )
        if outcome.http_status == 503 or outcome.error == "InternalError":
            raise TransientError(outcome.reason or "the gateway could not take the event")
