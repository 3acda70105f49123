"""One FHIR request -> canonical commands and the id that makes a re-sent request idempotent.

The message id, in order of preference:
  1. a message that places an order: its placer order number, as a conditional create
     (`If-None-Exist: identifier=<placer system>|<value>`, stated or implied), so that a re-sent
     order returns the first answer whatever Bundle it arrives in;
  2. Bundle.identifier, else the MessageHeader's id;
  3. `<type>/<id>/_history/<versionId>` of a resource sent on its own;
  4. none: the request is not de-duplicated (its effect is checked by the lifecycle).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from adapters.fhir.orders import OrderMapping
from adapters.fhir.patients import merge_parameters, patient_command
from adapters.fhir.profile import SiteProfile
from adapters.fhir.resources import Contents, Json, Located, identifiers_of, refs_of
from adapters.fhir.triage import (
    CONTEXT,
    FOR_ANOTHER_ORDER,
    NOT_A_THERAPY_APPOINTMENT,
    NOT_A_THERAPY_ORDER,
    NOT_AN_INFUSION,
    NOT_COMPLETED,
    NOT_TAKEN,
    UNKNOWN_PATIENT,
    Passed,
)
from adapters.fhir.validation import ORDER_TYPES
from gateway.sdk import Command, ExternalRef, MappingError, NotOurs, OrderStatus, Party, UnsupportedMessage

MAX_ID = 200  # the idempotency key column
ACTED_ON = (*ORDER_TYPES, "Patient", "Appointment", "Procedure")
ANY_REQUEST = ("Bundle", "Parameters", *ORDER_TYPES, "Patient", "Appointment", "Procedure")
# what is about an order, and the element that names it
ABOUT = {"Appointment": "basedOn", "BiologicallyDerivedProduct": "request", "Procedure": "basedOn"}
# The id of a message that places an order: a conditional create on its placer order number.
PLACEMENT = "ServiceRequest?identifier="


@dataclass(frozen=True)
class Interaction:
    """How the request arrived: the REST interaction around the body."""

    method: str = "POST"
    resource_type: str | None = None  # the endpoint's type; None at the base (Bundles)
    resource_id: str | None = None  # PUT [type]/[id]
    if_none_exist: str | None = None
    operation: str | None = None  # "merge" for Patient/$merge
    accepted: tuple[str, ...] = ANY_REQUEST  # the resource types the endpoint takes
    known_orders: Mapping[ExternalRef, OrderStatus] = field(default_factory=dict)
    known_patients: frozenset[ExternalRef] | None = None  # None: not looked up, all are taken


@dataclass(frozen=True)
class Mapped:
    commands: list[Command]
    passed: list[Passed]


def commands_of(
    document: Json, contents: Contents, profile: SiteProfile, site: Party, i: Interaction
) -> Mapped:
    """The commands of a request and the entries passed over; NotOurs when nothing is acted on."""
    if document["resourceType"] == "Parameters":
        return Mapped(_known(i, [merge_parameters(document, profile)]), [])
    orders = OrderMapping(contents, profile, site, i.known_orders)
    commands: list[Command] = []
    passed = [
        Passed(e.path, e.type, NOT_TAKEN) for e in contents.entries if e.type not in (*ACTED_ON, *CONTEXT)
    ]
    others: set[int] = set()  # orders passed over (by identity): what is about them is passed over too
    for located in contents.of_type(*ORDER_TYPES):
        product = orders.product(located)
        if product is None and not orders.is_known(located):
            passed.append(Passed(located.path, located.type, NOT_A_THERAPY_ORDER))
            others.add(id(located))
        else:
            commands.append(orders.order(located, product))
    for located in contents.of_type(*ABOUT):
        about = located.resource.get(ABOUT[located.type]) or []
        if any(id(contents.resolve(r)) in others for r in about):
            passed.append(Passed(located.path, located.type, FOR_ANOTHER_ORDER))
            continue
        if located.type == "BiologicallyDerivedProduct":
            command = orders.collected(located)
            commands += [command] if command else []
            continue
        if located.type == "Procedure":
            command = orders.infused(located)
            if command is not None:
                commands.append(command)
            else:
                why = NOT_COMPLETED if orders.is_infusion(located) else NOT_AN_INFUSION
                passed.append(Passed(located.path, located.type, why))
            continue
        command = orders.appointment(located)
        if command is None:
            passed.append(Passed(located.path, located.type, NOT_A_THERAPY_APPOINTMENT))
        else:
            commands.append(command)
    if not commands and contents.of_type(*ORDER_TYPES):
        raise _not_ours("not_a_therapy_order", NOT_A_THERAPY_ORDER)
    if not commands and contents.of_type("Appointment"):
        raise _not_ours("not_a_therapy_appointment", NOT_A_THERAPY_APPOINTMENT)
    if not commands and contents.of_type("Procedure"):
        reason = next((p.why for p in passed if p.type == "Procedure"), NOT_AN_INFUSION)
        raise _not_ours("not_a_completed_infusion", reason)
    if not commands:  # nothing about an order: the Patients are identity updates
        for located in contents.of_type("Patient"):
            command = patient_command(located, contents, profile)
            if _known(i, [command], raising=False):
                commands.append(command)
            else:
                passed.append(Passed(located.path, located.type, UNKNOWN_PATIENT))
        if not commands and contents.of_type("Patient"):
            raise _not_ours("unknown_patient", UNKNOWN_PATIENT)
    if not commands:
        raise _not_ours("nothing_to_act_on", NOT_TAKEN)
    # placements first: later commands of the same message may name the order they create
    return Mapped(sorted(commands, key=lambda c: c.event != "order.placed"), passed)


def _known(i: Interaction, commands: list[Command], *, raising: bool = True) -> list[Command]:
    """The patient commands that name a patient the gateway knows (all, when it was not looked
    up); an update or merge of patients it does not know is not its business."""
    if i.known_patients is None:
        return commands
    kept = [c for c in commands if any(r in i.known_patients for r in c.refs)]
    if not kept and raising:
        raise _not_ours("unknown_patient", UNKNOWN_PATIENT)
    return kept


def _not_ours(reason: str, why: str) -> NotOurs:
    return NotOurs(reason, f"{why}: acknowledged and ignored")


def message_id(
    document: Json, contents: Contents, commands: list[Command], profile: SiteProfile
) -> str | None:
    placing = [c for c in commands if c.event == "order.placed"]
    placer_ns = profile.rule("placer_order").namespace
    if placing:
        placed = [next(r for r in c.refs if r.namespace == placer_ns) for c in placing]
        for located in contents.of_type(*ORDER_TYPES):
            own = [
                r for r in refs_of(identifiers_of(located.resource), profile, "placer_order") if r in placed
            ]
            if own:  # an order placed now (not one passed over, nor a change to another)
                _check_condition(located, own[0], profile)
        placer = placed[0]
        return _bounded(f"{PLACEMENT}{placer.namespace}|{placer.value}", keep=PLACEMENT)
    identifier = document.get("identifier") or {}
    if document["resourceType"] == "Bundle" and identifier.get("value"):
        return _bounded(f"Bundle?identifier={identifier.get('system', '')}|{identifier['value']}")
    header = next(iter(contents.of_type("MessageHeader")), None)
    if header is not None and header.resource.get("id"):
        return _bounded(f"MessageHeader/{header.resource['id']}")
    version = (document.get("meta") or {}).get("versionId")
    if document["resourceType"] != "Bundle" and document.get("id") and version:
        return _bounded(f"{document['resourceType']}/{document['id']}/_history/{version}")
    return None


def _check_condition(located: Located, placer: ExternalRef, profile: SiteProfile) -> None:
    """A stated If-None-Exist must search on the order's own placer order number."""
    condition = located.if_none_exist
    if not condition:
        return
    entry = located.path.removesuffix(".resource")
    where = f"{entry}.request.ifNoneExist" if located.path.startswith("Bundle") else "If-None-Exist"
    params = parse_qsl(condition.split("?", 1)[-1], keep_blank_values=True)
    if len(params) != 1 or params[0][0] != "identifier" or "|" not in params[0][1]:
        raise UnsupportedMessage(
            "If-None-Exist supports one criterion: identifier=<placer order system>|<value>", location=where
        )
    system, value = params[0][1].split("|", 1)
    if profile.kind_of_system(system) != "placer_order" or value != placer.value:
        raise MappingError("If-None-Exist must name the order's own placer order number", location=where)


def places_order(key: str | None) -> bool:
    """Whether a message under this id places an order (its id is the conditional create)."""
    return key is not None and key.startswith(PLACEMENT)


def _bounded(key: str, keep: str = "") -> str:
    """The key, or its digest when it is too long (after `keep`, which says what kind it is)."""
    if len(key) <= MAX_ID:
        return key
    return keep + "sha256:" + hashlib.sha256(key.encode()).hexdigest()
