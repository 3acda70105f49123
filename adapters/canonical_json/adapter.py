"""The canonical-json dialect: `{"message_id": ..., "commands": [Command, ...]}` in, Outcome JSON out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson
from pydantic import Field, ValidationError

from gateway.canonical.base import Canonical
from gateway.canonical.command import Command, fingerprint
from gateway.errors import MalformedMessage
from gateway.registry import Example, ExternalMessage, InboundContext
from gateway.service.outcome import Outcome

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

    def parse(self, raw: bytes, ctx: InboundContext) -> ExternalMessage:
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
        return ExternalMessage(envelope.message_id, envelope, fingerprint(envelope.commands))

    def to_canonical(self, msg: ExternalMessage, ctx: InboundContext) -> list[Command]:
        envelope: Envelope = msg.content
        return list(envelope.commands)

    def ack(self, outcome: Outcome) -> bytes:
        """The outcome itself when applied; otherwise an RFC 9457 problem that carries it. (A repeat
        is answered with these bytes again, so they do not say whether they answer one: the
        `Idempotent-Replayed` header does.)"""
        body = outcome.model_dump(mode="json", exclude_none=True, exclude={"http_status", "duplicate"})
        if outcome.status != "applied":
            body = {
                "type": "about:blank",
                "title": outcome.error,
                "detail": outcome.reason,
                **body,
                "outcome": body["status"],
                "status": outcome.http_status,
            }
        return orjson.dumps(body)

    def examples(self) -> Sequence[Example]:
        return [
            Example(path.stem, path.read_bytes(), "malformed" if "malformed" in path.stem else "valid")
            for path in sorted(EXAMPLES.glob("*.json"))
        ]


adapter = CanonicalJson()
