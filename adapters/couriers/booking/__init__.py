"""Courier booking: when a shipment leg is due, book it with the courier's API and declare the
shipment through the one door (docs/outbound.md)."""
