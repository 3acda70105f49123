"""Task reads and searches for the FHIR routes, through the Orders port: a search's identifier
parameter in the site's terms, turned into the namespaces and the value the port looks up.

A site sees only orders it is a party to; anyone else's order is "not found", never "forbidden".
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.fhir.profile import SiteProfile
from gateway.sdk import MalformedMessage, NotFound, Orders, OrderView, Partner


async def task(orders: Orders, partner: Partner, task_id: str) -> OrderView:
    view = await orders.view(partner, task_id)
    if view is None:
        raise NotFound(f"Task/{task_id} is not known")
    return view


async def search(
    orders: Orders, partner: Partner, profile: SiteProfile, params: Sequence[tuple[str, str]]
) -> list[OrderView]:
    """Tasks by one identifier=[system|]value: the COI or the placer order number."""
    unknown = sorted({k for k, _ in params} - {"identifier", "_format"})
    if unknown:
        raise MalformedMessage(f"unknown search parameter: {', '.join(unknown)}; Task takes identifier")
    tokens = [v for k, v in params if k == "identifier"]
    if len(tokens) != 1 or not tokens[0]:
        raise MalformedMessage("search Task by one identifier=[system|]value")
    system, _, value = tokens[0].rpartition("|")
    namespaces: list[str] = [profile.rule("coi").namespace, profile.rule("placer_order").namespace]
    if system:
        kind = profile.kind_of_system(system)
        if kind is None:
            # A placer number typed PLAC is taken under the sender's own system (resources.py):
            # it is found by that system too. (The system itself is not kept, only the value.)
            kind = "placer_order"
        namespaces = [profile.rule(kind).namespace] if kind in ("coi", "placer_order") else []
    if not namespaces:
        return []
    value = value.upper() if system and profile.kind_of_system(system) == "coi" else value
    return await orders.find(partner, namespaces, value)
