"""LoRaWAN temperature loggers through The Things Stack v3 webhooks (docs/couriers-loggers.md)."""
