"""Parsing a large frame off the event loop: the adapter for a message already parsed and mapped
(on the listener's worker thread), which `accept()` takes like any other adapter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.canonical.command import Command
from gateway.registry import Example, ExternalMessage, InboundContext
from gateway.service.outcome import Outcome

if TYPE_CHECKING:
    from adapters.hl7v2.adapter import Answering


class Prepared:
    """The adapter for one message parsed and mapped beforehand, off the event loop: `parse`
    hands back that result (or raises its error), the rest is the message's `Answering`."""

    def __init__(self, answering: Answering, result: ExternalMessage | Exception) -> None:
        self.answering, self.result = answering, result
        self.name, self.dialect, self.content_type = answering.name, answering.dialect, answering.content_type

    def parse(self, raw: bytes, ctx: InboundContext) -> ExternalMessage:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    def to_canonical(self, msg: ExternalMessage, ctx: InboundContext) -> list[Command]:
        return self.answering.to_canonical(msg, ctx)

    def ack(self, outcome: Outcome) -> bytes:
        return self.answering.ack(outcome)

    def examples(self) -> Sequence[Example]:
        return self.answering.examples()


def parse_or_error(adapter: Answering, raw: bytes, ctx: InboundContext) -> ExternalMessage | Exception:
    try:
        return adapter.parse(raw, ctx)
    except Exception as exc:  # handed back to accept(), which raises and translates it as usual
        return exc
