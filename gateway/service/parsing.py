"""The adapter contract before gateway.sdk (parse / to_canonical / ack), which `accept` still takes
while adapters move to decode / answer. Discovery (gateway.registry) re-exports it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from gateway.adapter_contract import Adapter as DecodingAdapter
from gateway.adapter_contract import Example, InboundContext
from gateway.canonical.command import Command
from gateway.outcome import Outcome


@dataclass(frozen=True)
class ExternalMessage:
    """A parsed message in its own dialect; `message_id` is the sender's id for idempotency.

    `fingerprint`: what the message says, without what does not change its meaning in the dialect
    (framing, line ends, key order...). A message under a used id is a repeat when its fingerprint
    equals the first's, and refused otherwise. None: the raw bytes are the fingerprint.
    """

    message_id: str | None
    content: Any
    fingerprint: bytes | None = None


@runtime_checkable
class ParsingAdapter(Protocol):
    """The contract before gateway.sdk: parse, to_canonical, ack (being replaced by decode/answer)."""

    name: str
    dialect: str
    content_type: str

    def parse(self, raw: bytes, ctx: InboundContext) -> ExternalMessage: ...

    def to_canonical(self, msg: ExternalMessage, ctx: InboundContext) -> list[Command]: ...

    def ack(self, outcome: Outcome) -> bytes: ...

    def examples(self) -> Sequence[Example]: ...


Adapter = ParsingAdapter | DecodingAdapter
