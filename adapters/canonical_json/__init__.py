"""Canonical JSON: a partner posts the gateway's own commands (for MES and tools that speak it)."""
