"""The kinds of partner the gateway speaks with: each sends its own part of the journey."""

from __future__ import annotations

from enum import StrEnum


class PartnerKind(StrEnum):
    site = "site"
    courier = "courier"
    manufacturer = "manufacturer"

    @property
    def namespace_prefix(self) -> str:
        return {"site": "site", "courier": "courier", "manufacturer": "mes"}[self.value]
