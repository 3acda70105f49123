"""The canonical-json dialect: `{"message_id": ..., "commands": [Command, ...]}` in, Outcome JSON out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson
from pydantic import Field, ValidationError

from gateway.sdk import (
    Canonical,
    Command,
    Decoded,
    Example,
    InboundContext,
    MalformedMessage,
    Outcome,
    examples_in,
    fingerprint,
    outcome_json,
)

EXAMPLES = Path(__file__).parent / "examples"


class Envelope(Canonical):
    message_id: str = Field(min_length=1, max_length=200)
    commands: tuple[Command, ...] = Field(min_length=1, max_length=50)


def _location(exc: ValidationError) -> str:
    loc = exc.errors()[0]["loc"] if exc.errors() else ()
    return "/" + "/".join(str(p) for p in loc)


class CanonicalJson:
    name = "canonical-json"
    dialect = "canonical JSON commands"
    content_type = "application/json"

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        """Bytes that are not a command envelope are refused whole (MalformedMessage): there is no
        header to answer in, the answer is the same problem+json either way."""
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedMessage("the body is not JSON", detail=str(exc)) from None
        try:
            envelope = Envelope.model_validate(document)
        except ValidationError as exc:
            where = _location(exc)
            raise MalformedMessage(
                f"the body is not a canonical command envelope (at {where})",
                detail=exc.errors()[0]["msg"] if exc.errors() else str(exc),
                location=where,
            ) from None
        return Decoded(envelope.message_id, envelope.commands, fingerprint=fingerprint(envelope.commands))

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        return outcome_json(outcome)

    def examples(self) -> Sequence[Example]:
        return examples_in(EXAMPLES, "*.json")


adapter = CanonicalJson()
