"""The journey simulator: many N-of-1 journeys driven through a running gateway's real interfaces
(HL7 v2 over MLLP and FHIR R4 for sites, the couriers' and manufacturers' own dialects over HTTP
and AMQP), with faults injected
and an audit at the end of what each fault became. `cgt-gateway simulate --help`; docs/simulator.md.

It is a client: it imports nothing of the gateway's internals but the identifier rules
(gateway.canonical.ids), so what it proves is what a partner would see."""
