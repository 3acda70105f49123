"""Courier dialects: each an adapter of its own (adapters/couriers/<name>/)."""
