"""The adapter contract (DESIGN §3) and discovery through the `cgt_gateway.adapters` entry points.

An adapter is one external dialect: `decode` / `answer` (gateway.sdk.contract) or, while adapters
move, `parse` / `to_canonical` / `ack` (gateway.service.parsing), and `examples` for the shared
conformance suite. Badly shaped adapters are refused at start-up with a message that names them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapter_contract import Adapter as DecodingAdapter
from gateway.adapter_contract import Example, HasHttpRoutes, InboundContext, Running
from gateway.errors import ConfigError
from gateway.partners import Partners
from gateway.ports import Deliveries, Orders
from gateway.service.intake import Intake
from gateway.service.parsing import Adapter, ExternalMessage, ParsingAdapter
from gateway.settings import Settings

__all__ = [
    "Adapter",
    "DecodingAdapter",
    "Example",
    "ExternalMessage",
    "HasHttpRoutes",
    "HasTransport",
    "InboundContext",
    "ParsingAdapter",
    "Running",
    "Runtime",
    "installed_adapters",
    "load_adapters",
    "validate_adapter",
]

GROUP = "cgt_gateway.adapters"


class Runtime(Protocol):
    """What an adapter's transports get from the running gateway."""

    settings: Settings
    engine: AsyncEngine
    intake: Intake
    partners: Partners
    adapters: dict[str, Adapter]

    @property
    def orders(self) -> Orders: ...

    @property
    def deliveries(self) -> Deliveries: ...


@runtime_checkable
class HasTransport(Protocol):
    """An adapter that listens or consumes on its own (MLLP server, outbound consumers)."""

    async def start_transport(self, runtime: Runtime) -> Running: ...


_ARITY = {"parse": 2, "to_canonical": 2, "ack": 1, "examples": 0}
_DECODING_ARITY = {"decode": 2, "answer": 2, "examples": 0}


def validate_adapter(name: str, obj: object) -> Adapter:
    """Refuse an adapter that does not have the contract's shape."""
    arities = _DECODING_ARITY if hasattr(obj, "decode") else _ARITY
    if not isinstance(obj, DecodingAdapter | ParsingAdapter):
        missing = [a for a in ("name", "dialect", "content_type", *arities) if not hasattr(obj, a)]
        raise ConfigError(f"adapter {name!r} does not fulfil the adapter contract: missing {missing}")
    if obj.name != name:
        raise ConfigError(f"adapter registered as {name!r} calls itself {obj.name!r}")
    for method, arity in arities.items():
        fn: Callable[..., Any] = getattr(obj, method)
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        if len(params) != arity:
            raise ConfigError(f"adapter {name!r}: {method} takes {len(params)} arguments, expected {arity}")
    return obj


def installed_adapters() -> set[str]:
    """The names of every adapter installed, whether enabled or not."""
    return set(entry_points(group=GROUP).names)


def load_adapters(only: str | None = None) -> dict[str, Adapter]:
    """Every installed adapter, or those named in `only` (comma-separated)."""
    wanted = {n.strip() for n in only.split(",") if n.strip()} if only else None
    adapters: dict[str, Adapter] = {}
    found = entry_points(group=GROUP)
    if wanted and (unknown := wanted - set(found.names)):
        raise ConfigError(f"adapters not installed: {', '.join(sorted(unknown))}")
    for ep in found:
        if wanted is not None and ep.name not in wanted:
            continue
        try:
            obj = ep.load()
        except Exception as exc:  # an import error in a plugin: refuse to start, say which
            raise ConfigError(f"adapter {ep.name!r} ({ep.value}) failed to load: {exc!r}") from exc
        adapters[ep.name] = validate_adapter(ep.name, obj)
    return adapters
