"""The base of every canonical model: immutable and closed to unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Canonical(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)
