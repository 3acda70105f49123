"""Carrier tracking: the large carriers' and aggregators' tracking events (UPS, FedEx, DHL,
EasyPost, AfterShip, Shippo), by webhook or by polling their APIs, as canonical shipment events."""
