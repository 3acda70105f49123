"""Kept for existing imports: the CloudEvents builders live in `gateway.canonical.events`."""

from gateway.canonical.events import envelope, order_event, source_of

__all__ = ["envelope", "order_event", "source_of"]
