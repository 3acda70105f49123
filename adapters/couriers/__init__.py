"""Couriers' dialects, one package a dialect (DESIGN §2: `adapters/couriers/<name>/`)."""
