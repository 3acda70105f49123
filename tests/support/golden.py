"""The one golden runner, for every dialect: an input file in, the canonical JSON of what it
decodes to out (its message id and commands, or the error that keeps them from applying),
compared with the expected file beside the input: `<name>.canonical.json`, or `<name>.error.json`
for an error.

    CGT_REGOLD=1 pytest tests/unit/test_hl7_golden.py tests/unit/test_fhir_mapping.py

rewrites the expected files from what the adapters decode now (then read the diff).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from gateway.errors import GatewayError, NotOurs
from gateway.sdk import Decoded

REGOLD = os.environ.get("CGT_REGOLD") == "1"


def error_json(exc: GatewayError) -> dict[str, Any]:
    if isinstance(exc, NotOurs):  # acknowledged and stored nowhere: the reason is what is counted
        return {"error": "NotOurs", "reason": exc.reason}
    return {
        "error": type(exc).__name__,
        "location": getattr(exc, "location", None),
        "code": getattr(exc, "code", None),
    }


def canonical(decode: Callable[[], Decoded]) -> dict[str, Any]:
    """What `decode()` gives, as JSON; an error it raises is the message's error, as returned."""
    try:
        decoded = decode()
    except GatewayError as exc:
        decoded = Decoded(error=exc)
    if decoded.error is not None:
        return error_json(decoded.error)
    return {
        "message_id": decoded.message_id,
        "commands": [c.model_dump(mode="json") for c in decoded.commands],
    }


def expected_path(source: Path, actual: dict[str, Any]) -> Path:
    return source.with_suffix(".error.json" if "error" in actual else ".canonical.json")


def check(source: Path, decode: Callable[[], Decoded]) -> dict[str, Any]:
    """Compare what `source` decodes to with its expected file (rewritten first under CGT_REGOLD=1)."""
    actual = canonical(decode)
    expected = expected_path(source, actual)
    if REGOLD:
        expected.write_bytes(orjson.dumps(actual, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    assert expected.exists(), f"no golden file {expected.name} for {source.name}"
    assert actual == orjson.loads(expected.read_bytes())
    return actual
