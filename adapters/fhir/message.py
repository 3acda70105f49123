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
from adapters.fhir.resources import Contents, Json, Located
from adapters.fhir.validation import ORDER_TYPES
from gateway.canonical.command import Command
from gateway.canonical.ids import ExternalRef
from gateway.canonical.lifecycle import OrderStatus
from gateway.canonical.order import Party
from gateway.errors import MappingError, UnsupportedMessage

MAX_ID = 200  # the idempotency key column


@dataclass(frozen=True)
class Interaction:
    """How the request arrived: the REST interaction around the body."""

    method: str = "POST"
    resource_type: str | None = None  # the endpoint's type; None at the base (Bundles)
    resource_id: str | None = None  # PUT [type]/[id]
    if_none_exist: str | None = None
    operation: str | None = None  # "merge" for Patient/$merge
    known_orders: Mapping[ExternalRef, OrderStatus] = field(default_factory=dict)


def commands_of(
    document: Json, contents: Contents, profile: SiteProfile, site: Party, i: Interaction
) -> list[Command]:
    if document["resourceType"] == "Parameters":
        return [merge_parameters(document, profile)]
    orders = OrderMapping(contents, profile, site, i.known_orders)
    commands = [orders.order(e) for e in contents.of_type(*ORDER_TYPES)]
    commands += [orders.appointment(e) for e in contents.of_type("Appointment")]
    commands += [c for e in contents.of_type("BiologicallyDerivedProduct") if (c := orders.collected(e))]
    if not commands:  # nothing about an order: the Patients are identity updates
        commands = [patient_command(e, contents, profile) for e in contents.of_type("Patient")]
    if not commands:
        raise MappingError(
            "the message carries no order, appointment, collection or patient to act on",
            location=document["resourceType"],
        )
    # placements first: later commands of the same message may name the order they create
    return sorted(commands, key=lambda c: c.event != "order.placed")


def message_id(
    document: Json, contents: Contents, commands: list[Command], profile: SiteProfile
) -> str | None:
    placing = [c for c in commands if c.event == "order.placed"]
    placer_ns = profile.rule("placer_order").namespace
    if placing:
        placer = next(r for r in placing[0].refs if r.namespace == placer_ns)
        for located in contents.of_type(*ORDER_TYPES):
            _check_condition(located, placer, profile)
        return _bounded(f"ServiceRequest?identifier={placer.namespace}|{placer.value}")
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


def _bounded(key: str) -> str:
    if len(key) <= MAX_ID:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
