"""Cold-chain data loggers' batched readings, in the shape of Tive's webhook (docs/couriers-loggers.md)."""
