"""The shared conformance suite: every registered adapter passes it, for free (DESIGN §3), as each
kind of partner that may use it: those it names (`partner_kinds`) and those of the shipped
partners that name it; a site, when neither says.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.canonical.command import Command
from gateway.canonical.envelope import utcnow
from gateway.canonical.parties import PartnerKind
from gateway.errors import ConfigError, DuplicateKey, GatewayError, RejectedMessage
from gateway.outcome import Outcome
from gateway.partners import Partner, load_partners
from gateway.registry import Adapter, Example, InboundContext, load_adapters, validate_adapter
from gateway.sdk import Configurable, Decoded
from gateway.settings import Settings

ADAPTERS = load_adapters()
SETTINGS = Settings()
PARTNERS = load_partners(SETTINGS.partners_file, env="test")
for _adapter in ADAPTERS.values():
    if isinstance(_adapter, Configurable):
        _adapter.configure(SETTINGS, PARTNERS)  # as the gateway does at start-up

# One partner of each kind: the demo one (it has the profiles).
DEMO = {PartnerKind.site: "demo-hospital", PartnerKind.courier: "demo-courier"}
DEMO |= {PartnerKind.manufacturer: "demo-manufacturer"}


def partner_kinds(adapter: Adapter) -> tuple[PartnerKind, ...]:
    named = {*getattr(adapter, "partner_kinds", ()), *(p.kind for p in PARTNERS if p.adapter == adapter.name)}
    return tuple(k for k in PartnerKind if k in named) or (PartnerKind.site,)


def partner(kind: PartnerKind) -> Partner:
    return PARTNERS.get(DEMO[kind])


def context(kind: PartnerKind) -> InboundContext:
    return InboundContext(partner(kind), "test", utcnow())


def decode(adapter: Adapter, raw: bytes, ctx: InboundContext) -> Decoded:
    """The adapter's decode. Only a GatewayError may leave an adapter: any other exception fails
    the suite."""
    try:
        return adapter.decode(raw, ctx)
    except GatewayError as exc:  # bytes it cannot read at all
        return Decoded(error=exc)


def answer(adapter: Adapter, outcome: Outcome, decoded: Decoded | None) -> bytes:
    return adapter.answer(outcome, decoded)


def users() -> list[Any]:
    return [
        pytest.param(name, kind, id=f"{name}:{kind}")
        for name, adapter in ADAPTERS.items()
        for kind in partner_kinds(adapter)
    ]


def cases() -> list[Any]:
    return [
        pytest.param(adapter, kind, example, id=f"{name}:{kind}:{example.name}")
        for name, adapter in ADAPTERS.items()
        for kind in partner_kinds(adapter)
        for example in adapter.examples()
    ]


def test_every_adapter_ships_valid_and_malformed_examples() -> None:
    assert "canonical-json" in ADAPTERS
    for name, adapter in ADAPTERS.items():
        kinds = {e.expect for e in adapter.examples()}
        assert kinds == {"valid", "malformed"}, f"{name} must ship both kinds of example"


def test_the_suite_runs_each_adapter_as_the_partners_that_use_it() -> None:
    assert partner_kinds(ADAPTERS["hl7v2"]) == (PartnerKind.site,)  # hospitals' EHRs only
    assert set(partner_kinds(ADAPTERS["canonical-json"])) == set(PartnerKind)  # every demo partner
    for name, adapter in ADAPTERS.items():
        declared = getattr(adapter, "partner_kinds", ())
        assert all(isinstance(k, PartnerKind) for k in declared), name


@pytest.mark.parametrize(("adapter", "kind", "example"), cases())
def test_examples_parse_or_fail_as_declared(adapter: Adapter, kind: PartnerKind, example: Example) -> None:
    ctx = context(kind)
    decoded = decode(adapter, example.raw, ctx)
    if example.expect == "malformed":
        assert isinstance(decoded.error, RejectedMessage), decoded.error
        assert decoded.error.public_message
        assert not decoded.commands
        return
    assert decoded.error is None, decoded.error
    commands = list(decoded.commands)
    assert commands and all(isinstance(c, Command) for c in commands)
    assert decoded.message_id, "a valid message carries the sender's id, for idempotency"
    # pure: the same input maps to the same commands, and is known again as the same message
    again = decode(adapter, example.raw, ctx)
    assert list(again.commands) == commands
    assert again.fingerprint == decoded.fingerprint, "a repeat must be told from another message"
    for command in commands:
        assert Command.model_validate_json(command.model_dump_json()) == command


def _examples(adapter: Adapter, kind: PartnerKind) -> list[Decoded | None]:
    """What `answer` may be handed: nothing read, and each example as decoded."""
    ctx = context(kind)
    return [None, *(decode(adapter, e.raw, ctx) for e in adapter.examples())]


@pytest.mark.parametrize(("name", "kind"), users())
@pytest.mark.parametrize("status", ["applied", "quarantined", "rejected"])
def test_every_outcome_renders_an_answer(name: str, kind: PartnerKind, status: str) -> None:
    outcome = Outcome(
        status=status,
        inbound_id="1",
        partner=DEMO[kind],
        message_id="M1",  # type: ignore[arg-type]
        error=None if status == "applied" else "MappingError",
        reason=None if status == "applied" else "the message could not be mapped",
        http_status=201 if status == "applied" else 422,
    )
    adapter = ADAPTERS[name]
    for decoded in _examples(adapter, kind):
        rendered = answer(adapter, outcome, decoded)
        assert isinstance(rendered, bytes) and rendered


@pytest.mark.parametrize(("name", "kind"), users())
def test_every_adapter_refuses_a_reused_id_in_its_dialect(name: str, kind: PartnerKind) -> None:
    refusal = DuplicateKey(detail="first used by inbound 1")
    outcome = Outcome.of_error("rejected", refusal, "2", DEMO[kind], "M1")
    assert (outcome.code, outcome.http_status) == ("205", 409)
    adapter = ADAPTERS[name]
    for decoded in _examples(adapter, kind):
        rendered = answer(adapter, outcome, decoded)
        assert isinstance(rendered, bytes) and b"new id" in rendered and b"inbound 1" not in rendered


class NoDecode:
    name = "broken"
    dialect = "x"
    content_type = "x"

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        return b""


class WrongDecode(NoDecode):
    def decode(self, raw: bytes) -> Decoded:
        return Decoded()

    def examples(self) -> list[Example]:
        return []


def test_a_badly_shaped_adapter_is_refused_with_its_name() -> None:
    with pytest.raises(ConfigError, match=r"'broken'.*decode"):
        validate_adapter("broken", NoDecode())
    with pytest.raises(ConfigError, match="decode takes 1 arguments, expected 2"):
        validate_adapter("broken", WrongDecode())
    with pytest.raises(ConfigError, match="calls itself"):
        validate_adapter("other-name", WrongDecode())
