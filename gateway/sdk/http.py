"""HTTP helpers for adapters that serve routes (defined in gateway.http_body)."""

from gateway.http_body import bounded_body, refusal, refuse

__all__ = ["bounded_body", "refusal", "refuse"]
