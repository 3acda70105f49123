"""The FHIR R4 dialect: Bundles and resources in (validated with fhir.resources R4B), canonical
commands out; OperationOutcome and response Bundles back; routes under /fhir/r4 and Task push.

The whole mapping runs in `parse`, not only the reading: a conditional create's id (the placer
order number) comes out of the mapping, and a message the mapping refuses must not leave its
idempotency key behind, so that the corrected message is not answered with the old refusal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from fastapi import APIRouter
from pydantic import ValidationError

from adapters.fhir import answers
from adapters.fhir.message import ACTED_ON, Interaction, commands_of, message_id
from adapters.fhir.patients import patient_refs_named
from adapters.fhir.profile import SiteProfile, profile_for
from adapters.fhir.resources import Contents, Json, identifiers_of, refs_of
from adapters.fhir.triage import Passed, passed_issue
from adapters.fhir.validation import ORDER_TYPES, contents, decode, validate
from gateway.canonical.command import Command, fingerprint
from gateway.canonical.ids import ExternalRef
from gateway.canonical.lifecycle import OrderStatus
from gateway.canonical.order import Party
from gateway.errors import ContractViolation, GatewayError, MalformedMessage, NotPermitted, UnsupportedMessage
from gateway.registry import Example, ExternalMessage, InboundContext, Running, Runtime
from gateway.service.outcome import Outcome

EXAMPLES = Path(__file__).parent / "examples"
ANY_REQUEST = ("Bundle", "Parameters", *ORDER_TYPES, "Patient", "Appointment")


@dataclass(frozen=True)
class Parsed:
    document: Json
    contents: Contents
    commands: tuple[Command, ...]
    passed: tuple[Passed, ...] = ()


def site_profile(ctx: InboundContext) -> SiteProfile:
    profile = profile_for(ctx.partner)
    if profile is None:
        raise NotPermitted("this partner is not configured for FHIR", detail=ctx.partner.id)
    return profile


class FhirRequest:
    """The adapter bound to one HTTP interaction (its method, id, If-None-Exist, known orders)."""

    name = "fhir-r4"
    dialect = "HL7 FHIR R4 (JSON)"
    content_type = answers.FHIR_JSON

    def __init__(self, interaction: Interaction, accepted: tuple[str, ...] = ANY_REQUEST) -> None:
        self.interaction = interaction
        self.accepted = accepted
        self._read: tuple[bytes, Json | GatewayError] | None = None
        self._parsed: Parsed | None = None
        self._profile: SiteProfile | None = None

    def read(self, raw: bytes) -> Json:
        """Decode and validate once; the route looks before the intake parses."""
        if self._read is None or self._read[0] is not raw:
            try:
                document = decode(raw)
                validate(document, self.accepted)
                self._read = (raw, document)
            except GatewayError as exc:
                self._read = (raw, exc)
        found = self._read[1]
        if isinstance(found, GatewayError):
            raise found
        return found

    def acted_on(self, raw: bytes) -> list[str]:
        """The resource types of a Bundle's entries that the gateway acts on (for token scopes)."""
        try:
            document = self.read(raw)
        except GatewayError:
            return []
        found = contents(document, method=self.interaction.method)
        return sorted({e.type for e in found.entries if e.type in ACTED_ON})

    def orders_to_look_up(self, raw: bytes, profile: SiteProfile) -> list[ExternalRef]:
        """Placer numbers of orders PUT (changed): a known one is a therapy order whatever code
        the change carries, and an active PUT of it is an update or a resumption. (A POST places:
        it needs its product code, and no lookup.)"""
        try:
            document = self.read(raw)
        except GatewayError:
            return []  # parse will raise it again, inside the intake, so that it is recorded
        found = contents(document, method=self.interaction.method)
        wanted: list[ExternalRef] = []
        for located in found.of_type(*ORDER_TYPES):
            if located.method == "PUT":
                wanted += refs_of(identifiers_of(located.resource), profile, "placer_order")
        return wanted

    def with_known_orders(self, known: Mapping[ExternalRef, OrderStatus]) -> None:
        self.interaction = Interaction(**{**self.interaction.__dict__, "known_orders": dict(known)})

    def patients_to_look_up(self, raw: bytes, profile: SiteProfile) -> list[ExternalRef]:
        """The MRNs of a patient update or merge (a request about no order), to know whether the
        gateway knows the patient at all."""
        try:
            document = self.read(raw)
        except GatewayError:
            return []
        found = contents(document, method=self.interaction.method)
        if found.of_type(*ORDER_TYPES, "Appointment", "BiologicallyDerivedProduct"):
            return []
        return patient_refs_named(document, found, profile)

    def with_known_patients(self, known: set[ExternalRef]) -> None:
        self.interaction = Interaction(**{**self.interaction.__dict__, "known_patients": frozenset(known)})

    def parse(self, raw: bytes, ctx: InboundContext) -> ExternalMessage:
        profile = site_profile(ctx)
        document = self.read(raw)
        i = self.interaction
        if i.resource_id is not None and document.get("id") != i.resource_id:
            raise MalformedMessage(
                "the resource's id must match the URL of the update",
                location=f"{document['resourceType']}.id",
            )
        if i.operation == "process-message" and document.get("type") != "message":
            raise UnsupportedMessage("$process-message takes a message Bundle", location="Bundle.type")
        found = contents(document, method=i.method, if_none_exist=i.if_none_exist)
        site = Party(id=ctx.partner.id, name=ctx.partner.name)
        try:
            mapped = commands_of(document, found, profile, site, i)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ContractViolation(
                f"the message maps to data the canonical contract refuses ({where}: {first['msg']})",
                location=where,
            ) from None
        commands = mapped.commands
        self._parsed = Parsed(document, found, tuple(commands), tuple(mapped.passed))
        self._profile = profile
        # A re-sent request is the same when it means the same and the first answer fits it: a
        # rebuilt Bundle (new ids, new urn:uuids, new timestamp) that maps to the same commands,
        # with its entries of the same types in the same order (a transaction-response answers
        # them one by one), is a repeat; other content under a used id is refused with 409.
        key = message_id(document, found, commands, profile)
        shape = orjson.dumps(entry_types(document)) if document.get("type") == "transaction" else b""
        return ExternalMessage(key, self._parsed, fingerprint(commands) + shape)

    def to_canonical(self, msg: ExternalMessage, ctx: InboundContext) -> list[Command]:
        parsed: Parsed = msg.content
        return list(parsed.commands)

    @property
    def places_order(self) -> bool:
        return self._parsed is not None and any(c.event == "order.placed" for c in self._parsed.commands)

    def ack(self, outcome: Outcome) -> bytes:
        parsed = self._parsed
        if parsed is None or outcome.status != "applied" or parsed.document.get("resourceType") != "Bundle":
            return answers.render(answers.of_outcome(outcome))
        document, noted = parsed.document, passed_issue(parsed.passed)
        entries = document["entry"]
        if document.get("type") == "transaction":
            answer = answers.transaction_response(outcome, entry_types(document))
            main = answer["entry"][0]["response"]["outcome"]
            self._per_entry(answer["entry"], outcome)
            answer["entry"][0]["response"]["outcome"] = main
            if noted:
                main["issue"].append(noted)
            return answers.render(answer)
        answer = answers.response_message(outcome, entries[0]["resource"])
        if noted:
            answer["entry"][1]["resource"]["issue"].append(noted)
        return answers.render(answer)

    def _per_entry(self, responses: list[Json], outcome: Outcome) -> None:
        """Each order entry's response names its own Task (a Bundle may place several orders);
        an entry passed over says so."""
        assert self._parsed is not None and self._profile is not None
        parsed, profile = self._parsed, self._profile
        placer_ns = profile.rule("placer_order").namespace
        order_of = {
            r: order_id
            for command, order_id in zip(parsed.commands, outcome.order_ids, strict=False)
            for r in command.refs
            if r.namespace == placer_ns and order_id
        }
        passed = {p.path: p for p in parsed.passed}
        for located, response in zip(parsed.contents.entries, responses, strict=True):
            if located.path in passed:
                note = passed_issue([passed[located.path]])
                response["response"] = {"status": "200 OK", "outcome": answers.operation_outcome(note or {})}
            elif located.type in ORDER_TYPES:
                placers = refs_of(identifiers_of(located.resource), profile, "placer_order")
                order_id = next((order_of[r] for r in placers if r in order_of), None)
                if order_id and "location" in response["response"]:
                    response["response"]["location"] = f"Task/{order_id}"

    def examples(self) -> Sequence[Example]:
        return [
            Example(path.stem, path.read_bytes(), "malformed" if "malformed" in path.stem else "valid")
            for path in sorted(EXAMPLES.glob("*.json"))
        ]


def entry_types(bundle: Json) -> list[str]:
    """The resource type of each entry of a Bundle, in order."""
    return [str(e["resource"]["resourceType"]) for e in bundle.get("entry", [])]


class FhirR4(FhirRequest):
    """The registered adapter: any request type, no HTTP context; serves routes and Task push."""

    def __init__(self) -> None:
        super().__init__(Interaction())

    def parse(self, raw: bytes, ctx: InboundContext) -> ExternalMessage:
        return FhirRequest(Interaction()).parse(raw, ctx)

    def ack(self, outcome: Outcome) -> bytes:
        return answers.render(answers.of_outcome(outcome))

    def http_routes(self) -> APIRouter:
        from adapters.fhir.routes import router

        return router()

    async def start_transport(self, runtime: Runtime) -> Running:
        from adapters.fhir.notify import start_notifiers
        from adapters.fhir.oauth import check_credentials, check_token_secret, start_token_service

        check_credentials(runtime.settings)
        check_token_secret(runtime.settings)
        await start_token_service(runtime.engine)
        return await start_notifiers(runtime)


adapter = FhirR4()
