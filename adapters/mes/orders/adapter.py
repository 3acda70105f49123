"""The mes-orders adapter: sends manufacturing orders and slot requests to manufacturers
(outbound.py). Its inbound side reads only its own records of a REST MES's immediate answer
(answer.py), taken through the door as that manufacturer's message.

Profiles: `mappings/mes/orders/<manufacturer>.yaml` (profile.py), loaded and checked at start-up:
a profile of a partner that is not a manufacturer refuses to start naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adapters.mes.orders.answer import read_answer
from adapters.mes.orders.outbound import ADAPTER, OrderRunners, start_orders
from adapters.mes.orders.profile import order_profiles
from gateway.sdk import (
    ConfigError,
    Decoded,
    Example,
    InboundContext,
    NotAuthenticated,
    Outcome,
    PartnerKind,
    Partners,
    Runtime,
    Settings,
    examples_in,
    outcome_json,
)

EXAMPLES = Path(__file__).parent / "examples"


class MesOrdersAdapter:
    name = ADAPTER
    dialect = "manufacturing orders (JSON, B2MML V0600 / V07) and a REST MES's answers"
    content_type = "application/json"
    partner_kinds = (PartnerKind.manufacturer,)

    def __init__(self) -> None:
        self.profiles = order_profiles()

    def configure(self, settings: Settings, partners: Partners) -> None:
        self.profiles.load(settings)
        directory = self.profiles.directory_for(settings)
        for name, profile in self.profiles.by_name().items():
            where = f"mes-orders profile {directory / name}.yaml"
            try:
                maker = partners.get(profile.manufacturer)
            except NotAuthenticated:
                raise ConfigError(f"{where}: manufacturer: no partner {profile.manufacturer!r}") from None
            if maker.kind is not PartnerKind.manufacturer:
                raise ConfigError(f"{where}: manufacturer: {profile.manufacturer} is not a manufacturer")
            if self.profiles.for_partner(maker) is None:
                raise ConfigError(f"{where}: the file is not named after the manufacturer's profile")

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        return read_answer(raw)

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        return outcome_json(outcome)

    def examples(self) -> Sequence[Example]:
        return examples_in(EXAMPLES, "*.json")

    async def start_transport(self, runtime: Runtime) -> OrderRunners:
        if self.profiles.directory is None:  # made after start-up's configure(): load now
            self.configure(runtime.settings, runtime.partners)
        return await start_orders(runtime, self, self.profiles.all())


adapter = MesOrdersAdapter()
