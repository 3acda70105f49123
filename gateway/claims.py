"""A signed attempt, to be taken once: what the replay memory keeps (gateway.store.replays)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Claim:
    """A signed attempt, to be taken once across replicas for as long as its signature is fresh.
    `scope`: whose (e.g. `webhook:<partner>`); `key` is a digest of what a replay would repeat:
    bounded, and no sender text is stored."""

    scope: str
    key: str
    expires_at: datetime

    @classmethod
    def of(cls, scope: str, key: str, expires_at: datetime) -> Claim:
        return cls(scope, hashlib.sha256(key.encode()).hexdigest(), expires_at)
