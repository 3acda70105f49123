"""Kept while adapters move to `gateway.sdk`: `Outcome` lives in `gateway.outcome`."""

from gateway.outcome import Outcome, Status

__all__ = ["Outcome", "Status"]
