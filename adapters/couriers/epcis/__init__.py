"""GS1 EPCIS 2.0 capture (JSON-LD, the EPCIS REST binding) from couriers: docs/couriers-epcis.md."""
