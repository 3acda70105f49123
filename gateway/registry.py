"""Adapter discovery through the `cgt_gateway.adapters` entry points, and the shape check that
refuses a badly shaped adapter at start-up with a message naming it. The contract itself is
gateway.adapter_contract (decode / answer / examples), which gateway.sdk hands adapters."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from gateway.adapter_contract import Adapter, Example, HasHttpRoutes, InboundContext, Running, TellsRejection
from gateway.errors import ConfigError, GatewayError
from gateway.partners import Partners
from gateway.ports import HasTransport, Runtime

__all__ = [
    "Adapter",
    "Example",
    "HasHttpRoutes",
    "HasTransport",
    "InboundContext",
    "Running",
    "Runtime",
    "installed_adapters",
    "load_adapters",
    "rejection_notices",
    "validate_adapter",
]

GROUP = "cgt_gateway.adapters"


_ARITY = {"decode": 2, "answer": 2, "examples": 0}


def validate_adapter(name: str, obj: object) -> Adapter:
    """Refuse an adapter that does not have the contract's shape."""
    if not isinstance(obj, Adapter):
        missing = [a for a in ("name", "dialect", "content_type", *_ARITY) if not hasattr(obj, a)]
        raise ConfigError(f"adapter {name!r} does not fulfil the adapter contract: missing {missing}")
    if obj.name != name:
        raise ConfigError(f"adapter registered as {name!r} calls itself {obj.name!r}")
    for method, arity in _ARITY.items():
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


def rejection_notices(
    adapters: Mapping[str, Adapter], partners: Partners
) -> Callable[[str, str], str | None]:
    """(partner id, adapter name) -> how that sender hears of a rejection, None when it cannot."""

    def notice(partner_id: str, adapter_name: str) -> str | None:
        adapter = adapters.get(adapter_name)
        if not isinstance(adapter, TellsRejection):
            return None
        try:
            partner = partners.get(partner_id)
        except GatewayError:
            return None
        return adapter.rejection_notice(partner)

    return notice
