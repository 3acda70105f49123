"""Export the audit chain as a FHIR R4 Bundle (AuditEvent per record, Provenance per applied
change) for a site's compliance tools, and verify such an export against the chain's hashes.

Each AuditEvent carries its record exactly as hashed (seq, at, actor, action, subject, detail,
prev_hash, hash) in one extension, so the hash can be computed again from the file alone. Details
are PHI-free by design (identifiers and reasons), and the export adds nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.audit.chain import GENESIS, AuditEntry, record_hash
from gateway.audit.checkpoint import Checkpoint
from gateway.audit.verify import ChainReport, genuine
from gateway.store.tables import audit_records

RECORD = "urn:cgt:fhir:StructureDefinition:audit-record"
SCOPE = "urn:cgt:fhir:CodeSystem:audit-export-scope"
ACTION = "urn:cgt:fhir:CodeSystem:audit-action"
ACTOR = "urn:cgt:fhir:NamingSystem:actor"
COI = "urn:cgt:fhir:NamingSystem:coi"
INBOUND = "urn:cgt:fhir:NamingSystem:inbound-message"
_FIELDS = ("seq", "at", "actor", "action", "subject", "detail", "prevHash", "hash")


def _canonical(detail: Any) -> str:
    return orjson.dumps(detail, option=orjson.OPT_SORT_KEYS).decode()


def _record_extension(row: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"url": "seq", "valueInteger": int(row.seq)},
        {"url": "at", "valueString": row.at.isoformat()},
        {"url": "actor", "valueString": row.actor},
        {"url": "action", "valueString": row.action},
    ]
    if row.subject is not None:
        parts.append({"url": "subject", "valueString": row.subject})
    parts += [
        {"url": "detail", "valueString": _canonical(row.detail)},
        {"url": "prevHash", "valueString": row.prev_hash},
        {"url": "hash", "valueString": row.hash},
    ]
    return {"url": RECORD, "extension": parts}


def _outcome(action: str) -> str:
    # 0 success, 4 minor failure: the message was refused or failed; everything else happened.
    return "4" if action.endswith(".failed") or action == "message.rejected" else "0"


def audit_event(row: Any) -> dict[str, Any]:
    detail: dict[str, Any] = row.detail if isinstance(row.detail, dict) else {}
    entities: list[dict[str, Any]] = []
    if row.subject is not None and "order_id" in detail:  # the subject of an order's record is its COI
        entities.append({"what": {"identifier": {"system": COI, "value": row.subject}}, "role": _role("4")})
    if isinstance(detail.get("inbound_id"), str):
        entities.append({"what": {"identifier": {"system": INBOUND, "value": detail["inbound_id"]}}})
    return {
        "resourceType": "AuditEvent",
        "extension": [_record_extension(row)],
        "type": {"system": ACTION, "code": row.action.split(".", 1)[0]},
        "subtype": [{"system": ACTION, "code": row.action}],
        "recorded": row.at.isoformat(),
        "outcome": _outcome(row.action),
        "agent": [
            {
                "who": {"identifier": {"system": ACTOR, "value": row.actor}, "display": row.actor},
                "requestor": not row.actor.startswith("gateway"),
            }
        ],
        "source": {"observer": {"display": "cgt-gateway"}},
        **({"entity": entities} if entities else {}),
    }


def _role(code: str) -> dict[str, str]:
    return {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": code}


def provenance(row: Any, audit_url: str) -> dict[str, Any] | None:
    """The Provenance of an applied change: a record that names an order and the event it made."""
    detail = row.detail if isinstance(row.detail, dict) else {}
    if row.subject is None or "order_id" not in detail or "event_id" not in detail:
        return None
    entity: list[dict[str, Any]] = [{"role": "source", "what": {"reference": audit_url}}]
    if isinstance(detail.get("inbound_id"), str):
        message = {"identifier": {"system": INBOUND, "value": detail["inbound_id"]}}
        entity.append({"role": "source", "what": message})
    return {
        "resourceType": "Provenance",
        "target": [{"identifier": {"system": COI, "value": row.subject}}],
        "recorded": row.at.isoformat(),
        "activity": {"coding": [{"system": ACTION, "code": row.action}]},
        "agent": [{"who": {"identifier": {"system": ACTOR, "value": row.actor}, "display": row.actor}}],
        "entity": entity,
    }


async def export(
    conn: AsyncConnection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    coi: str | None = None,
) -> dict[str, Any]:
    """The records of a period [since, until) or of an order (COI), or the whole chain."""
    r = audit_records.c
    within = [*([r.at >= since] if since else []), *([r.at < until] if until else [])]
    query = select(audit_records).order_by(r.seq)
    if coi is not None:
        query = query.where(r.subject == coi, *within)
    elif within:
        # A period is a run of seq, every record between its first and its last: records commit in
        # seq order but a time is taken before the commit, so times alone could leave gaps.
        first, last = (await conn.execute(select(func.min(r.seq), func.max(r.seq)).where(*within))).one()
        query = query.where(r.seq >= (first or 0), r.seq <= (last or -1))
    scope = "order" if coi is not None else "period" if since or until else "full"
    entries: list[dict[str, Any]] = []
    for row in await conn.execute(query):
        url = f"urn:uuid:{uuid.uuid4()}"
        entries.append({"fullUrl": url, "resource": audit_event(row)})
        change = provenance(row, url)
        if change is not None:
            entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": change})
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "meta": {"tag": [{"system": SCOPE, "code": scope}]},
        "entry": entries,
    }


class _Apart(ValueError):
    """The AuditEvent's visible fields were edited apart from the record it carries."""


def _record(event: dict[str, Any]) -> dict[str, Any]:
    """The record an AuditEvent carries, checked against the event's own visible fields."""
    ext = next(e for e in event.get("extension", []) if e.get("url") == RECORD)
    values = {p["url"]: p.get("valueInteger", p.get("valueString")) for p in ext["extension"]}
    record: dict[str, Any] = {name: values.get(name) for name in _FIELDS}
    record["detail"] = orjson.loads(record["detail"])
    record["at"] = datetime.fromisoformat(record["at"])
    if event.get("recorded") != record["at"].isoformat():
        raise _Apart("its recorded time is not the record's")
    if event.get("subtype", [{}])[0].get("code") != record["action"]:
        raise _Apart("its subtype is not the record's action")
    if event.get("agent", [{}])[0].get("who", {}).get("identifier", {}).get("value") != record["actor"]:
        raise _Apart("its agent is not the record's actor")
    return record


def verify_export(
    bundle: dict[str, Any], checkpoints: Iterable[Checkpoint | str] = (), keys: Sequence[bytes] = ()
) -> ChainReport:
    """Compute every exported record's hash again; a full or period export must also link record to
    record (a period starts from the previous record's hash it carries), and records that a
    genuine checkpoint signed must hold the signed hash. Names the first record that does not hold."""
    tags = bundle.get("meta", {}).get("tag", [])
    scope = next((t.get("code") for t in tags if t.get("system") == SCOPE), None)
    signed, problems = genuine(checkpoints, keys)
    events = [
        e["resource"]
        for e in bundle.get("entry", [])
        if isinstance(e, dict) and e.get("resource", {}).get("resourceType") == "AuditEvent"
    ]
    checked, matched, covered = 0, 0, 0
    prev: str | None = GENESIS if scope == "full" else None
    expected: int | None = 1 if scope == "full" else None

    def broken(seq: int, reason: str) -> ChainReport:
        return ChainReport(checked, seq, reason, matched, covered, tuple(problems))

    for position, event in enumerate(events, start=1):
        try:
            record = _record(event)
            seq = int(record["seq"])
        except _Apart as apart:
            return broken(expected or position, str(apart))
        except Exception as exc:  # whatever the file holds
            return broken(expected or position, f"its record cannot be read ({type(exc).__name__})")
        if expected is not None and seq != expected:
            return broken(expected, f"record {expected} is missing")
        if prev is not None and record["prevHash"] != prev:
            return broken(seq, "does not link to the record before it")
        entry = AuditEntry(record["actor"], record["action"], record["subject"], record["detail"])
        if record_hash(seq, record["at"], entry, record["prevHash"]) != record["hash"]:
            return broken(seq, "its content does not match its hash")
        if seq in signed:
            if signed[seq] != {record["hash"]}:
                agrees = f"up to record {covered} and not after it" if covered else "at no checkpoint"
                return broken(
                    covered + 1,
                    f"rewritten: the export agrees with its signed checkpoints {agrees}"
                    f" (record {seq} is not the one signed then)",
                )
            matched, covered = matched + 1, seq
        checked += 1
        if scope != "order":  # an order's records are not consecutive: each vouches for itself
            prev, expected = record["hash"], seq + 1
    if scope == "full" and signed and max(signed) > checked:
        return broken(
            checked + 1, f"records after {checked} are missing: a checkpoint signed record {max(signed)}"
        )
    return ChainReport(checked, None, None, matched, covered, tuple(problems))
