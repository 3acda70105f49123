"""The shared conformance suite: every registered adapter passes it, for free (DESIGN §3)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.canonical.command import Command
from gateway.canonical.envelope import utcnow
from gateway.errors import ConfigError, DuplicateKey, RejectedMessage
from gateway.outcome import Outcome
from gateway.partners import load_partners
from gateway.registry import (
    Adapter,
    DecodingAdapter,
    Example,
    InboundContext,
    load_adapters,
    validate_adapter,
)
from gateway.settings import Settings

ADAPTERS = load_adapters()
PARTNERS = load_partners(Settings().partners_file, env="test")


def context() -> InboundContext:
    return InboundContext(PARTNERS.get("demo-hospital"), "test", utcnow())


def read(adapter: Adapter, raw: bytes, ctx: InboundContext) -> tuple[str | None, list[Command], bytes | None]:
    """The message id, commands and fingerprint, through either contract (decode, or parse and
    to_canonical); a message read but not taken raises its error, as parse would."""
    if isinstance(adapter, DecodingAdapter):
        decoded = adapter.decode(raw, ctx)
        if decoded.error is not None:
            raise decoded.error
        return decoded.message_id, list(decoded.commands), decoded.fingerprint
    parsed = adapter.parse(raw, ctx)
    return parsed.message_id, adapter.to_canonical(parsed, ctx), parsed.fingerprint


def answer(adapter: Adapter, outcome: Outcome) -> bytes:
    return adapter.answer(outcome, None) if isinstance(adapter, DecodingAdapter) else adapter.ack(outcome)


def cases() -> list[Any]:
    return [
        pytest.param(adapter, example, id=f"{name}:{example.name}")
        for name, adapter in ADAPTERS.items()
        for example in adapter.examples()
    ]


def test_every_adapter_ships_valid_and_malformed_examples() -> None:
    assert "canonical-json" in ADAPTERS
    for name, adapter in ADAPTERS.items():
        kinds = {e.expect for e in adapter.examples()}
        assert kinds == {"valid", "malformed"}, f"{name} must ship both kinds of example"


@pytest.mark.parametrize(("adapter", "example"), cases())
def test_examples_parse_or_fail_as_declared(adapter: Adapter, example: Example) -> None:
    ctx = context()
    if example.expect == "malformed":
        with pytest.raises(RejectedMessage) as caught:
            read(adapter, example.raw, ctx)
        assert caught.value.public_message
        return
    message_id, commands, fingerprint = read(adapter, example.raw, ctx)
    assert commands and all(isinstance(c, Command) for c in commands)
    assert message_id, "a valid message carries the sender's id, for idempotency"
    # pure: the same input maps to the same commands, and is known again as the same message
    _, again, again_fingerprint = read(adapter, example.raw, ctx)
    assert again == commands
    assert again_fingerprint == fingerprint, "a repeat must be told from another message"
    for command in commands:
        assert Command.model_validate_json(command.model_dump_json()) == command


@pytest.mark.parametrize("name", sorted(ADAPTERS))
@pytest.mark.parametrize("status", ["applied", "quarantined", "rejected"])
def test_every_outcome_renders_an_answer(name: str, status: str) -> None:
    outcome = Outcome(
        status=status,
        inbound_id="1",
        partner="demo-hospital",
        message_id="M1",  # type: ignore[arg-type]
        error=None if status == "applied" else "MappingError",
        reason=None if status == "applied" else "the message could not be mapped",
        http_status=201 if status == "applied" else 422,
    )
    rendered = answer(ADAPTERS[name], outcome)
    assert isinstance(rendered, bytes) and rendered


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_every_adapter_refuses_a_reused_id_in_its_dialect(name: str) -> None:
    refusal = DuplicateKey(detail="first used by inbound 1")
    outcome = Outcome.of_error("rejected", refusal, "2", "demo-hospital", "M1")
    assert (outcome.code, outcome.http_status) == ("205", 409)
    rendered = answer(ADAPTERS[name], outcome)
    assert isinstance(rendered, bytes) and b"new id" in rendered and b"inbound 1" not in rendered


class NoParse:
    name = "broken"
    dialect = "x"
    content_type = "x"

    def to_canonical(self, msg: object, ctx: object) -> list[Command]:
        return []


class WrongArity(NoParse):
    def parse(self, raw: bytes) -> None: ...

    def ack(self, outcome: Outcome) -> bytes:
        return b""

    def examples(self) -> list[Example]:
        return []


def test_a_badly_shaped_adapter_is_refused_with_its_name() -> None:
    with pytest.raises(ConfigError, match=r"'broken'.*parse"):
        validate_adapter("broken", NoParse())
    with pytest.raises(ConfigError, match="parse takes 1 arguments, expected 2"):
        validate_adapter("broken", WrongArity())
    with pytest.raises(ConfigError, match="calls itself"):
        validate_adapter("other-name", WrongArity())
