"""The partners' own dialects the simulator speaks beside HL7 and canonical JSON: carrier tracking
in the UPS Track Alert shape and GS1 EPCIS 2.0 for the courier (signed with Standard Webhooks),
a dry shipper's logger in Tive's webhook shape, and the MES CloudEvents dialect."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.simulate.model import Boundary, Credentials, Step, Wire, iso

# canonical event -> the UPS status-description code, activity type and text that say it
TRACKING = {
    "shipment.picked_up": ("038", "P", "Picked Up by UPS"),
    "shipment.in_transit": ("005", "I", "On the Way"),
    "shipment.delivered": ("011", "D", "Delivered"),
}
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
BOL = "urn:epcglobal:cbv:bt:0614141000005"  # a bill of lading under the GS1 examples' company prefix
# canonical event -> the MES dialect's type (org.cgt.mes.<type>)
MES = {
    "slot.confirmed": "slot_confirmed",
    "manufacturing.material_received": "material_received",
    "manufacturing.started": "manufacturing_started",
    "manufacturing.step_completed": "step_completed",
    "manufacturing.qc_result": "qc_result",
    "manufacturing.released": "released",
    "manufacturing.shipped": "product_shipped",
}


class PartnerDialects:
    """Courier and MES messages of a step, signed as the partner signs them."""

    def __init__(self, directory: dict[str, Credentials]) -> None:
        self.directory = directory

    def signed(self, step: Step, body: bytes, path: str) -> Wire:
        """A courier dialect's webhook, signed with Standard Webhooks (webhook-id: the step)."""
        who = self.directory[step.sender]
        assert who.webhook_secret is not None, f"{step.sender} has no webhook secret"
        stamp = str(int(time.time()))
        key = base64.b64decode(who.webhook_secret.removeprefix("whsec_"))
        signed = f"{step.key}.{stamp}.".encode() + body
        signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        headers = (
            ("Content-Type", "application/json"),
            ("webhook-id", step.key),
            ("webhook-timestamp", stamp),
            ("webhook-signature", f"v1,{signature}"),
        )
        return Wire(step, body, path, headers)

    def tracking(self, step: Step, now: datetime) -> Wire:
        """A carrier's tracking event in the UPS Track Alert shape (the demo courier's)."""
        ids, leg = step.ids, step.data["leg"]
        code, kind, text = TRACKING[step.event]
        local = now.astimezone(UTC)
        body = {
            "trackingNumber": ids.inbound_tracking if leg == "inbound" else ids.outbound_tracking,
            "localActivityDate": f"{local:%Y%m%d}",
            "localActivityTime": f"{local:%H%M%S}",
            "activityLocation": {
                "city": "Simville",
                "stateProvince": "NC",
                "postalCode": "27001",
                "country": "US",
            },
            "activityStatus": {"type": kind, "code": "SM", "description": text, "descriptionCode": code},
            "gmtActivityDate": f"{local:%Y%m%d}",
            "gmtActivityTime": f"{local:%H%M%S}",
        }
        return self.signed(step, orjson.dumps(body), f"/couriers/{step.sender}/tracking")

    def epcis(self, step: Step, events: list[dict[str, Any]], now: datetime) -> Wire:
        """A GS1 EPCIS 2.0 document on the courier's capture endpoint, signed like its webhooks."""
        document = {
            "@context": [EPCIS_CONTEXT, {"cgt": "https://cgt-gateway.example.org/epcis/"}],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": iso(now),
            "id": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, step.key)}",
            "epcisBody": {"eventList": events},
        }
        wire = self.signed(step, orjson.dumps(document), f"/couriers/{step.sender}/epcis/capture")
        headers = tuple(h for h in wire.headers if h[0] != "Content-Type")
        extra = (("Content-Type", "application/ld+json"), ("GS1-EPCIS-Version", "2.0.0"))
        return Wire(step, wire.body, wire.path, (*headers, *extra))

    def epcis_readings(self, step: Step) -> Wire:
        """The inbound leg's logger readings as an EPCIS sensor report of the shipment."""
        ids, readings = step.ids, step.data["readings"]
        last = readings.last
        event = {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, step.key + '/1')}",
            "eventTime": iso(last),
            "eventTimeZoneOffset": "+00:00",
            "epcList": [],
            "action": "OBSERVE",
            "bizStep": "sensor_reporting",
            "bizTransactionList": [{"type": "bol", "bizTransaction": f"{BOL}:{ids.inbound_tracking}"}],
            "sensorElementList": [
                {
                    "sensorMetadata": {"time": iso(at), "deviceID": ids.inbound_logger},
                    "sensorReport": [{"type": "Temperature", "value": celsius, "uom": "CEL"}],
                }
                for at, celsius in readings
            ],
        }
        return self.epcis(step, [event], last)

    def epcis_scan(self, step: Step, now: datetime) -> Wire:
        """A handoff scan at the manufacturer's dock: the tracking number and the label's COI."""
        ids = step.ids
        event = {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, step.key + '/1')}",
            "eventTime": iso(now),
            "eventTimeZoneOffset": "+00:00",
            "epcList": [],
            "action": "OBSERVE",
            "bizStep": "arriving",
            "disposition": "in_transit",
            "bizTransactionList": [{"type": "bol", "bizTransaction": f"{BOL}:{ids.inbound_tracking}"}],
            "cgt:coi": ids.coi,
        }
        return self.epcis(step, [event], now)

    def logger(self, step: Step) -> Wire:
        """The outbound dry shipper's logger: a batch of entries in Tive's webhook shape, the
        shipper named by its SSCC."""
        ids = step.ids
        entries = [
            {
                "DeviceId": ids.outbound_logger,
                "DeviceName": ids.outbound_logger,
                "EntryTimeEpoch": int(at.timestamp() * 1000),
                "EntryTimeUtc": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Temperature": {"Celsius": celsius},
                "Battery": {"Percentage": 80},
                "Shipper": {"Serial": ids.outbound_sscc, "Ln2LevelPercentage": 70.0, "State": "Charged"},
            }
            for at, celsius in step.data["readings"]
        ]
        return self.signed(step, orjson.dumps(entries), f"/couriers/{step.sender}/telemetry")

    def mes(self, step: Step, now: datetime) -> Wire:
        """An MES event in the gateway's CloudEvents dialect, on POST /mes/{manufacturer}/events."""
        ids, d = step.ids, step.data
        kind, data = MES[step.event], {}
        if kind == "slot_confirmed":
            data = {"slot_id": f"SLOT-{ids.batch}", "slot_start": iso(d["slot_start"])}
        elif kind == "material_received":
            data = {
                "scanned": {"coi": ids.coi, "din": ids.din_scanned},
                "received_at": iso(now),
                "temperature_c": d["temperature_c"],
                "condition": d["condition"],
            }
        else:
            data = {"batch_id": ids.batch}
            if kind == "step_completed":
                data["step"] = d["step"]
            elif kind == "qc_result":
                data |= {"test": d["test"], "result": "pass"}
            elif kind == "released":
                data["certificate_of_analysis"] = f"COA-{ids.batch}"
            elif kind == "product_shipped":
                data |= {"shipment_id": ids.outbound_tracking, "courier": d["courier"]}
        event = {
            "specversion": "1.0",
            "id": step.key,
            "source": f"/mes/{step.sender}",
            "type": f"org.cgt.mes.{kind}",
            "subject": ids.coi,
            "time": iso(now),
            "datacontenttype": "application/json",
            "data": data,
        }
        if step.boundary is Boundary.mes_amqp:  # the manufacturer's own queue
            headers = (("Content-Type", "application/cloudevents+json"), ("partner", step.sender))
            return Wire(step, orjson.dumps(event), None, headers, queue=f"cgt.inbound.mes.{step.sender}")
        who = self.directory[step.sender]
        headers = (("Content-Type", "application/cloudevents+json"), ("X-API-Key", who.api_key or ""))
        return Wire(step, orjson.dumps(event), f"/mes/{step.sender}/events", headers)
