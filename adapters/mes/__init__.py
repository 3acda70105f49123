"""Manufacturers' MES dialects: CloudEvents JSON (`cloudevents/`), ISA-95 B2MML XML (`b2mml/`), and
the one inbound door both arrive by (`inbound/`: the AMQP queue and the HTTP route)."""
