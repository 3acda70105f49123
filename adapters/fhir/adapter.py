"""The FHIR R4 dialect: Bundles and resources in (validated with fhir.resources R4B), canonical
commands out; OperationOutcome and response Bundles back; routes under /fhir/r4 and Task push.

One adapter serves every request: what an HTTP request adds to its body (the interaction: method,
resource id, If-None-Exist, the endpoint's types, what the route looked up) comes in the context
(`InboundContext.request`, a `Received`); what the answer needs of the message comes back in
`Decoded.content` (a `Parsed`).

The whole mapping runs in `decode`, not only the reading: a conditional create's id (the placer
order number) comes out of the mapping, and a message the mapping refuses must not leave its
idempotency key behind, so that the corrected message is not answered with the old refusal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from fastapi import APIRouter
from pydantic import ValidationError

from adapters.fhir import answers
from adapters.fhir.message import Interaction, commands_of, message_id
from adapters.fhir.profile import SiteProfile, load_profiles, profile_for
from adapters.fhir.request import Received
from adapters.fhir.resources import Contents, Json, identifiers_of, refs_of
from adapters.fhir.routes import router
from adapters.fhir.triage import Passed, passed_issue
from adapters.fhir.validation import ORDER_TYPES, contents
from gateway.sdk import (
    Command,
    ContractViolation,
    Decoded,
    Example,
    GatewayError,
    InboundContext,
    MalformedMessage,
    NotPermitted,
    Outcome,
    Partner,
    Party,
    Running,
    Runtime,
    UnsupportedMessage,
    fingerprint,
)

EXAMPLES = Path(__file__).parent / "examples"


@dataclass(frozen=True)
class Parsed:
    """What the answer needs of a message: the document, its entries, the commands, the profile."""

    document: Json
    contents: Contents
    commands: tuple[Command, ...]
    profile: SiteProfile
    passed: tuple[Passed, ...] = ()


def site_profile(ctx: InboundContext) -> SiteProfile:
    profile = profile_for(ctx.partner)
    if profile is None:
        raise NotPermitted("this partner is not configured for FHIR", detail=ctx.partner.id)
    return profile


def request_of(raw: bytes, ctx: InboundContext) -> Received:
    """The route's reading of this body; else (no route, or another body) a reading of it now."""
    given = ctx.request
    if isinstance(given, Received) and given.raw is raw:
        return given
    return Received.of(raw, given if isinstance(given, Interaction) else Interaction())


class FhirR4:
    name = "fhir-r4"
    dialect = "HL7 FHIR R4 (JSON)"
    content_type = answers.FHIR_JSON

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        """Raises only when the body cannot be read (not JSON, not valid R4); what is read but
        not taken comes back as `Decoded(error=...)`, with no id (its key is not used up)."""
        request = request_of(raw, ctx)
        document = request.document()
        try:
            return map_request(document, request.interaction, ctx)
        except GatewayError as exc:
            return Decoded(error=exc)

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        parsed = decoded.content if decoded is not None else None
        if (
            not isinstance(parsed, Parsed)
            or outcome.status != "applied"
            or parsed.document.get("resourceType") != "Bundle"
        ):
            return answers.render(answers.of_outcome(outcome))
        document, noted = parsed.document, passed_issue(parsed.passed)
        entries = document["entry"]
        if document.get("type") == "transaction":
            answer = answers.transaction_response(outcome, entry_types(document))
            main = answer["entry"][0]["response"]["outcome"]
            per_entry(parsed, answer["entry"], outcome)
            answer["entry"][0]["response"]["outcome"] = main
            if noted:
                main["issue"].append(noted)
            return answers.render(answer)
        answer = answers.response_message(outcome, entries[0]["resource"])
        if noted:
            answer["entry"][1]["resource"]["issue"].append(noted)
        return answers.render(answer)

    def examples(self) -> Sequence[Example]:
        return [
            Example(path.stem, path.read_bytes(), "malformed" if "malformed" in path.stem else "valid")
            for path in sorted(EXAMPLES.glob("*.json"))
        ]

    def http_routes(self) -> APIRouter:
        return router(self)

    def rejection_notice(self, partner: Partner) -> str | None:
        """A site with Task push hears of a rejected message: a Task with status `rejected`."""
        profile = profile_for(partner)
        config = profile.notifications if profile else None
        if config is None or not config.url.resolve():
            return None
        return "a Task with status rejected, pushed to the site's FHIR server"

    async def start_transport(self, runtime: Runtime) -> Running:
        from adapters.fhir.notify import start_notifiers
        from adapters.fhir.oauth import check_credentials, check_token_secret, start_token_service

        profiles = load_profiles(runtime.settings)
        for partner in runtime.partners:
            profiles.for_partner(partner)  # a profile that names another partner stops the start
        check_credentials(runtime.settings)
        check_token_secret(runtime.settings)
        await start_token_service(runtime.secrets)
        return await start_notifiers(runtime)


def map_request(document: Json, i: Interaction, ctx: InboundContext) -> Decoded:
    """The commands of a read request, its id and fingerprint, and what the answer needs."""
    profile = site_profile(ctx)
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
    commands = tuple(mapped.commands)
    # A re-sent request is the same when it means the same and the first answer fits it: a
    # rebuilt Bundle (new ids, new urn:uuids, new timestamp) that maps to the same commands,
    # with its entries of the same types in the same order (a transaction-response answers
    # them one by one), is a repeat; other content under a used id is refused with 409.
    key = message_id(document, found, mapped.commands, profile)
    shape = orjson.dumps(entry_types(document)) if document.get("type") == "transaction" else b""
    return Decoded(
        message_id=key,
        commands=commands,
        fingerprint=fingerprint(list(commands)) + shape,
        content=Parsed(document, found, commands, profile, tuple(mapped.passed)),
    )


def per_entry(parsed: Parsed, responses: list[Json], outcome: Outcome) -> None:
    """Each order entry's response names its own Task (a Bundle may place several orders); an
    entry passed over says so."""
    profile = parsed.profile
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


def entry_types(bundle: Json) -> list[str]:
    """The resource type of each entry of a Bundle, in order."""
    return [str(e["resource"]["resourceType"]) for e in bundle.get("entry", [])]


adapter = FhirR4()
