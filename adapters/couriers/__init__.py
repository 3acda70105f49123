"""Couriers' dialects, one package each (docs/couriers-loggers.md, couriers-tracking.md, couriers-epcis.md)."""
