"""Credentials as partners present them: a header's credential read safely, and the gateway's own
signature scheme (`X-CGT-Signature: sha256=<hex>` over `timestamp.body`) checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from gateway.errors import NotAuthenticated

# The one documented signature form: `sha256=` and 64 lowercase or uppercase hex digits.
SIGNATURE = re.compile(r"^sha256=([0-9a-fA-F]{64})$")
MAX_CREDENTIAL = 4096  # characters: room for a bearer token; no key or signature comes near it


def credential(value: str | None, what: str) -> bytes | None:
    """A header credential as bytes, or None when absent. Anything but printable ASCII of sane
    length is a malformed credential (401), never a comparison that fails on it (500)."""
    if not value:
        return None
    if len(value) > MAX_CREDENTIAL or not (value.isascii() and value.isprintable()):
        raise NotAuthenticated(f"the {what} is malformed", detail=f"malformed {what}")
    return value.encode("ascii")


def check_cgt_signature(
    secrets: Iterable[str],
    body: bytes,
    stamp: bytes,
    given: bytes,
    *,
    tolerance_s: int,
    now: float,
    who: str = "-",
) -> str:
    """The `X-CGT-*` scheme: `given` must be `sha256=hex(HMAC-SHA256(secret, stamp + "." + body))`
    for one of `secrets`, and `stamp` a Unix time within `tolerance_s` of `now`. Only that form is
    taken: a bare hex digest or another prefix is refused. Returns the digest (lowercase hex)."""
    form = SIGNATURE.match(given.decode("ascii"))
    if form is None:
        raise NotAuthenticated("the signature must be sha256=<64 hex digits>", detail="malformed signature")
    if not stamp.isdigit():
        raise NotAuthenticated("the signature timestamp is not a Unix time")
    if abs(now - int(stamp)) > tolerance_s:
        raise NotAuthenticated("the signature timestamp is too old or in the future")
    digest = form[1].lower()
    matched = False
    for secret in secrets:  # every secret is tried: the time taken does not say which matched
        expected = hmac.new(secret.encode(), stamp + b"." + body, hashlib.sha256).hexdigest()
        matched |= hmac.compare_digest(expected.encode(), digest.encode())
    if not matched:
        raise NotAuthenticated(detail=f"{who}: bad signature")
    return digest
