"""Re-process stored messages: run a kept raw message again through today's mapping (after a
profile fix), as from its original partner with the partner's current configuration.

A dry run decodes and checks the message, and shows the commands it would give and how that
differs from what its first processing applied; it writes nothing, and runs no reconciliation.
Otherwise the message goes through the intake like any other (authorisation, reconciliation,
lifecycle, audit, outbox), under its own idempotency key (`reprocess:<inbound id>`): a second
run answers the first run's outcome and changes nothing. Its audit records name the message
re-processed and the operator who asked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapter_contract import Adapter, Decoded, InboundContext
from gateway.canonical.command import Command
from gateway.canonical.envelope import utcnow
from gateway.errors import GatewayError, NotOurs
from gateway.partners import Partners
from gateway.service.door import UNKNOWN_PREFIX
from gateway.service.inbound import accept, decode_message
from gateway.service.intake import Intake
from gateway.store.reads import event_types_of, inbound_message
from gateway.store.records import Reprocessing


@dataclass(frozen=True)
class Processing:
    """What became of a message, once: its status, the error's class, the events' types."""

    status: str  # applied, quarantined, rejected, ignored; "would apply" in a dry run
    error: str | None = None
    events: tuple[str, ...] = ()

    def __str__(self) -> str:
        said = " ".join(x for x in (self.status, self.error) if x)
        return f"{said}: {', '.join(self.events)}" if self.events else said


@dataclass(frozen=True)
class Report:
    """One message's re-processing. `refused`: why it cannot be re-processed (then nothing else)."""

    inbound_id: str
    partner: str | None = None
    adapter: str | None = None
    first: Processing | None = None
    commands: tuple[dict[str, Any], ...] = ()
    now: Processing | None = None
    new_inbound_id: str | None = None
    repeat: bool = False  # re-processed before: the first re-processing's answer, nothing changed
    refused: str | None = None

    @property
    def changed(self) -> bool:
        """Whether this processing differs from the first (a dry run's "would apply" is "applied")."""
        return _settled(self.first) != _settled(self.now)

    def difference(self) -> list[str]:
        """What differs from the first processing, one line each: the outcome, events gained or lost."""
        first, now = _settled(self.first), _settled(self.now)
        if first is None or now is None or first == now:
            return []
        lines = []
        if (first.status, first.error) != (now.status, now.error):
            was = " ".join(x for x in (first.status, first.error) if x)
            lines.append(f"outcome: {was} -> {' '.join(x for x in (now.status, now.error) if x)}")
        lines += [f"+ {e}" for e in now.events if e not in first.events]
        lines += [f"- {e}" for e in first.events if e not in now.events]
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "inbound_id": self.inbound_id,
            "partner": self.partner,
            "adapter": self.adapter,
            "refused": self.refused,
            "first": _processing(self.first),
            "commands": list(self.commands),
            "now": _processing(self.now),
            "changed": self.changed if self.refused is None else None,
            "difference": self.difference(),
            "new_inbound_id": self.new_inbound_id,
            "repeat": self.repeat,
        }


def summary(command: Command, *, values: bool) -> dict[str, Any]:
    """A command as shown to an operator: PHI-free (event, identifier namespaces) unless `values`."""
    if values:
        return command.model_dump(mode="json", exclude_none=True)
    return {
        "event": command.event,
        "identifiers": sorted({r.namespace for r in command.refs}),
        "binds": sorted({r.namespace for r in command.binds}),
    }


async def reprocess(
    engine: AsyncEngine,
    intake: Intake,
    partners: Partners,
    adapters: dict[str, Adapter],
    inbound_id: str,
    *,
    operator: str | None,
    dry_run: bool,
    show_values: bool = False,
) -> Report:
    """Re-process one stored message (a dry run when `dry_run`; otherwise `operator` is required)."""
    if not dry_run and not operator:
        raise ValueError("re-processing for real needs the operator's name")
    async with engine.connect() as conn:
        stored = await inbound_message(conn, inbound_id)
        first_events = tuple(await event_types_of(conn, inbound_id)) if stored else ()
    if stored is None:
        return Report(inbound_id, refused="no inbound message has this id")
    partner_id, adapter_name = stored["partner"], stored["adapter"]
    report = Report(
        inbound_id,
        partner=partner_id,
        adapter=adapter_name,
        first=Processing(stored["outcome"], stored["reason"], first_events),
    )
    if partner_id.startswith(UNKNOWN_PREFIX):
        return replace(report, refused="its sender was never identified: there is no partner to run it as")
    if adapter_name not in adapters:
        return replace(report, refused=f"adapter {adapter_name!r} is not enabled here")
    try:
        partner = partners.get(partner_id)
    except GatewayError:
        return replace(report, refused=f"partner {partner_id!r} is not configured any more")
    adapter, raw = adapters[adapter_name], bytes(stored["raw"])
    ctx = InboundContext(partner, stored["transport"], utcnow())
    decoded = decode_message(adapter, raw, ctx, intake.log_phi)
    report = replace(report, commands=tuple(summary(c, values=show_values) for c in decoded.commands))
    if dry_run:
        return replace(report, now=_predicted(partner_id, partners, decoded))
    assert operator is not None
    outcome, _ = await accept(
        intake,
        adapter,
        partner,
        raw,
        transport=stored["transport"],
        content_type=stored["content_type"],
        received_at=ctx.received_at,
        decoded=decoded,
        reprocessing=Reprocessing(of=inbound_id, operator=operator),
    )
    events: tuple[str, ...] = ()
    if outcome.inbound_id:
        async with engine.connect() as conn:
            events = tuple(await event_types_of(conn, outcome.inbound_id))
    return replace(
        report,
        now=Processing(outcome.status, outcome.error, events),
        new_inbound_id=outcome.inbound_id,
        repeat=outcome.duplicate,
    )


def _predicted(partner_id: str, partners: Partners, decoded: Decoded) -> Processing:
    """What the mapping and the partner's permissions say now; reconciliation is not run."""
    if isinstance(decoded.error, NotOurs):
        return Processing("ignored", decoded.error.reason)
    if decoded.error is not None:
        return Processing("rejected", type(decoded.error).__name__)
    try:
        partners.get(partner_id).check_commands(list(decoded.commands))
    except GatewayError as exc:
        return Processing("rejected", type(exc).__name__)
    return Processing("would apply", None, tuple(c.event for c in decoded.commands))


def _settled(p: Processing | None) -> Processing | None:
    return replace(p, status="applied") if p and p.status == "would apply" else p


def _processing(p: Processing | None) -> dict[str, Any] | None:
    return {"status": p.status, "error": p.error, "events": list(p.events)} if p else None
