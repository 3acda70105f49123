"""Wire the gateway once: settings -> database, partners, adapters, broker, relay, intake."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import audit, metrics
from gateway.adapter_contract import Configurable
from gateway.audit.checkpoint import Due, audit_key
from gateway.audit.checkpointer import Checkpointer
from gateway.bus.broker import Broker
from gateway.bus.relay import OutboxRelay
from gateway.canonical.envelope import utcnow
from gateway.coldchain.classes import load_cold_chain
from gateway.errors import ConfigError, TransientError
from gateway.identity.authorise import Authority, load_assignments
from gateway.identity.disclosure import load_disclosure
from gateway.partners import Partners, load_partners
from gateway.ports import Crosswalk, Deliveries, Messages, Orders
from gateway.registry import Adapter, HasTransport, Running, installed_adapters, load_adapters
from gateway.service.deliveries import StoreDeliveries
from gateway.service.door import IntakeDoor
from gateway.service.intake import Intake
from gateway.service.mes_rules import load_manufacturing_rules
from gateway.service.sweep import ClockSweeper
from gateway.settings import Settings
from gateway.store.db import create_engine, dispose
from gateway.store.kept import StoreMessages
from gateway.store.migrate import migrate
from gateway.store.polls import StorePolls
from gateway.store.refusals import StoreRefusals
from gateway.store.replays import StoreReplays
from gateway.store.secrets import StoreSecrets
from gateway.store.unit_of_work import SqlTransactions
from gateway.store.views import StoreViews

log = logging.getLogger(__name__)


@dataclass
class Gateway:
    settings: Settings
    engine: AsyncEngine
    partners: Partners
    adapters: dict[str, Adapter]
    broker: Broker
    relay: OutboxRelay
    intake: Intake
    checkpointer: Checkpointer
    door: IntakeDoor  # the ports adapters get (gateway.ports)
    views: StoreViews
    secrets: StoreSecrets
    sweeper: ClockSweeper
    started: bool = field(default=False)
    transports: list[Running] = field(default_factory=list)
    _watch: asyncio.Task[None] | None = None

    @property
    def crosswalk(self) -> Crosswalk:
        return self.views

    @property
    def orders(self) -> Orders:
        return self.views

    @cached_property
    def replays(self) -> StoreReplays:
        return StoreReplays(self.engine)

    @cached_property
    def refusals(self) -> StoreRefusals:
        return StoreRefusals(
            self.engine,
            per_hour=self.settings.webhook_refused_kept_per_hour,
            bytes_per_hour=self.settings.webhook_refused_kept_bytes_per_hour,
        )

    @cached_property
    def deliveries(self) -> Deliveries:
        return StoreDeliveries(self.engine)

    @cached_property
    def polls(self) -> StorePolls:
        return StorePolls(self.engine)

    @cached_property
    def messages(self) -> Messages:
        return StoreMessages(self.engine)

    @property
    def relay_embedded(self) -> bool:
        return self.settings.relay == "embedded"

    async def start(self, *, run_migrations: bool = True) -> None:
        if run_migrations:
            await migrate(self.engine)
        if self.relay_embedded:
            self.relay.start()
        else:  # `cgt-gateway relay` publishes; this process only watches the broker for /health
            self._watch = asyncio.create_task(self._watch_broker(), name="broker-watch")
        self.checkpointer.start()
        self.sweeper.start()
        for adapter in self.adapters.values():
            if isinstance(adapter, HasTransport):
                self.transports.append(await adapter.start_transport(self))
        self.started = True
        log.info("gateway started (database %s)", self.engine.dialect.name)

    async def stop(self) -> None:
        while self.transports:
            await self.transports.pop().stop()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await self.sweeper.stop()
        await self.checkpointer.stop()
        await self.relay.stop()
        await self.views.close()
        await dispose(self.engine)
        self.started = False

    async def _watch_broker(self) -> None:
        while True:
            with contextlib.suppress(TransientError):
                await self.broker.connect()  # reconnects only when the connection is gone
            metrics.BROKER_UP.set(1 if self.broker.connected else 0)
            await asyncio.sleep(self.settings.outbox_poll_seconds)

    async def database_up(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # any failure to reach the database means: down
            return False
        return True


def bootstrap(settings: Settings | None = None, *, clock: Callable[[], datetime] = utcnow) -> Gateway:
    """`clock`: the intake's and the clocks' sweep's time (tests move it to cross a deadline)."""
    settings = settings or Settings()
    if settings.env == "production" and settings.log_phi:
        raise ConfigError("CGT_LOG_PHI may not be set in production")
    key = audit_key(settings.env)
    partners = load_partners(settings.partners_file, env=settings.env)
    adapters = load_adapters(settings.adapters)
    for partner in partners:
        # A partner of an adapter installed but not enabled here (CGT_ADAPTERS) is not served.
        for name in (partner.adapter, *partner.dialects):
            if name not in adapters and name not in installed_adapters():
                raise ConfigError(f"partner {partner.id} names adapter {name!r}, which is not installed")
    for adapter in adapters.values():
        if isinstance(adapter, Configurable):
            adapter.configure(settings, partners)  # its profiles, say: a bad one refuses to start
    engine = create_engine(settings.database_url)
    broker = Broker(settings.amqp_url)
    relay = OutboxRelay(
        engine,
        broker,
        batch=settings.outbox_batch,
        poll_seconds=settings.outbox_poll_seconds,
        linger_seconds=settings.outbox_linger_seconds,
        lease_seconds=settings.outbox_lease_seconds,
        keep=timedelta(hours=settings.outbox_keep_hours),
    )
    assignments = load_assignments(settings.assignments_file, partners)
    cold_chain = load_cold_chain(settings.temperature_classes_file)
    on_commit = relay.wake if settings.relay == "embedded" else None
    intake = Intake(
        engine,
        coi_facility=settings.coi_facility,
        authority=Authority(partners, assignments),
        on_commit=on_commit,
        log_phi=settings.log_phi,
        manufacturing=load_manufacturing_rules(settings),  # a bad file refuses to start
        clock=clock,
        cold_chain=cold_chain,
    )
    checkpointer = Checkpointer(
        engine,
        key,
        Due(records=settings.audit_checkpoint_records, seconds=settings.audit_checkpoint_seconds),
        path=settings.checkpoints_file,
        on_commit=relay.wake if settings.relay == "embedded" else None,
    )
    views = StoreViews(engine, assignments, load_disclosure(settings.disclosure_dir, partners))
    return Gateway(
        settings,
        engine,
        partners,
        adapters,
        broker,
        relay,
        intake,
        checkpointer,
        IntakeDoor(intake),
        views,
        StoreSecrets(engine),
        ClockSweeper(
            SqlTransactions(engine, audit.append, pipelined=False),
            settings.clock_sweep_seconds,
            clock,
            on_commit or (lambda: None),
        ),
    )
