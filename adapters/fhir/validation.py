"""Strict reading of a FHIR R4 request body: JSON, a resource type this server takes, the R4B
models of fhir.resources, and the required code bindings those models leave to us (bindings.py).

Every error names the bad element as a FHIRPath (`Bundle.entry[2].resource.status`).
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from adapters.fhir.bindings import check_bindings
from adapters.fhir.resources import Contents, Json, Located
from gateway.sdk import MalformedMessage, UnsupportedMessage

# Entries of a Bundle may be of any R4 resource type: what the gateway does not take is passed
# over and listed back (triage.py), never a refusal of the whole Bundle.
ORDER_TYPES = ("ServiceRequest", "MedicationRequest")
BUNDLE_TYPES = ("transaction", "message")
ENTRY_METHODS = ("POST", "PUT")


@cache
def model(resource_type: str) -> type[BaseModel]:
    """The fhir.resources R4B model class (imported on first use: the package is large)."""
    if not resource_type.isalpha():
        raise KeyError(resource_type)
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    cls: type[BaseModel] = getattr(module, resource_type)
    return cls


def fhirpath(root: str, loc: tuple[int | str, ...]) -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def decode(raw: bytes) -> Json:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage("the body is not JSON", detail=str(exc)) from None
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise MalformedMessage("the body is not a FHIR resource (no resourceType)", location="resourceType")
    return document


def validate(document: Json, accepted: tuple[str, ...]) -> None:
    """Check the resource type, the entries' types, then the whole resource against R4B."""
    kind = document["resourceType"]
    if kind not in accepted:
        raise UnsupportedMessage(
            f"{kind} is not accepted here; this endpoint takes {', '.join(accepted)}",
            location=kind,
        )
    if kind == "Bundle":
        check_bindings(document, "Bundle")
        _check_bundle(document)
    try:
        model(kind).model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = fhirpath(kind, tuple(first["loc"]))
        raise MalformedMessage(
            f"{where}: {first['msg']}", detail=first["type"], location=where, code="structure"
        ) from None
    if kind != "Bundle":
        check_bindings(document, kind)
    for i, entry in enumerate(document.get("entry") or [] if kind == "Bundle" else []):
        check_bindings(entry["resource"], f"Bundle.entry[{i}].resource")


def _check_bundle(bundle: Json) -> None:
    btype = bundle.get("type")
    if btype not in BUNDLE_TYPES:
        raise UnsupportedMessage(
            f"Bundle.type {btype!r} is not taken; send a transaction or a message Bundle",
            location="Bundle.type",
        )
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise MalformedMessage("the Bundle has no entries", location="Bundle.entry")
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise MalformedMessage("every entry needs a resource", location=f"Bundle.entry[{i}].resource")
        if btype == "transaction":
            method = (entry.get("request") or {}).get("method")
            if method not in ENTRY_METHODS:
                raise UnsupportedMessage(
                    f"transaction entries must be POST or PUT, not {method!r}",
                    location=f"Bundle.entry[{i}].request.method",
                )
    if btype == "message" and entries[0]["resource"].get("resourceType") != "MessageHeader":
        raise MalformedMessage(
            "a message Bundle starts with its MessageHeader", location="Bundle.entry[0].resource"
        )


def contents(document: Json, *, method: str = "POST", if_none_exist: str | None = None) -> Contents:
    """Index the message's resources (a Bundle's entries, or the one resource)."""
    found = Contents()
    if document["resourceType"] != "Bundle":
        found.add(Located(document, document["resourceType"], method, if_none_exist))
        return found
    for i, entry in enumerate(document["entry"]):
        request: dict[str, Any] = entry.get("request") or {}
        located = Located(
            entry["resource"],
            f"Bundle.entry[{i}].resource",
            str(request.get("method") or "POST"),
            request.get("ifNoneExist"),
        )
        found.add(located, entry.get("fullUrl"))
    return found
