"""Answers any JSON-over-HTTP dialect may give: the outcome, or an RFC 9457 problem carrying it."""

from __future__ import annotations

import orjson

from gateway.outcome import Outcome


def outcome_json(outcome: Outcome) -> bytes:
    """The outcome itself when applied or ignored; otherwise an RFC 9457 problem that carries it
    (`status` the HTTP status, `outcome` what became of the message). A repeat is answered with
    these bytes again, so they do not say whether they answer one: the `Idempotent-Replayed`
    header does."""
    body = outcome.model_dump(mode="json", exclude_none=True, exclude={"http_status", "duplicate"})
    if outcome.status not in ("applied", "ignored"):
        body = {
            "type": "about:blank",
            "title": outcome.error,
            "detail": outcome.reason,
            **body,
            "outcome": body["status"],
            "status": outcome.http_status,
        }
    return orjson.dumps(body)
