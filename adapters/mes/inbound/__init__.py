"""The one inbound door of manufacturers' MES, whatever dialect they speak: the AMQP queue
`cgt.inbound.mes.<manufacturer>` and the route `POST /mes/{manufacturer}/events`."""
