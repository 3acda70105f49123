"""Manufacturing orders out: the order and the slot request, sent to the order's manufacturer
over AMQP or REST, as JSON or B2MML (docs/outbound.md)."""
