"""What the store keeps of one inbound message, and of the first answer given under its id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Reprocessing:
    """A stored message run again through today's mapping: which one, at whose request."""

    of: str  # the inbound id of the message as first received
    operator: str

    @property
    def message_id(self) -> str:
        """Its own idempotency key: a second re-processing gets the first's answer."""
        return f"reprocess:{self.of}"


@dataclass(frozen=True)
class InboundRecord:
    partner: str
    transport: str
    adapter: str
    message_id: str | None
    received_at: datetime
    content_type: str | None
    raw: bytes
    # What the message says, as its adapter normalised it (None: the raw bytes say it): two
    # messages under one id are one message sent twice when their fingerprints are equal.
    fingerprint: bytes | None = None
    reprocessing: Reprocessing | None = None  # None: as received from the partner

    @cached_property
    def content_hash(self) -> str:
        return hashlib.sha256(self.raw if self.fingerprint is None else self.fingerprint).hexdigest()


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer given under a message id, and the hash of what that message said (None
    for keys stored before hashes were)."""

    outcome: dict[str, Any]
    rendered: bytes | None
    content_hash: str | None
