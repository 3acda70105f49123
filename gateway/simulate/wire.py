"""How each step crosses its boundary: the bytes a site's EHR, a courier or a manufacturer's MES
would send for it, in the dialect that boundary speaks, and where they go.

HL7 v2 (ORM^O01, SIU^S12, ADT^A08) over MLLP for what EHRs send; JSON over HTTP for the rest.
Payloads are synthetic: simulated patients named `Sim<run><n>`, the examples' facility code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.simulate.plan import Boundary, Fault, Step

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


@dataclass(frozen=True)
class Credentials:
    """How the simulator authenticates as one partner (the gateway holds the other half)."""

    partner: str
    api_key: str | None = None
    hmac_secret: str | None = None
    webhook_secret: str | None = None  # Standard Webhooks (whsec_...), for the courier dialects
    sending_application: str | None = None
    sending_facility: str | None = None
    mrn_authority: str = "SIMHOSP"


@dataclass(frozen=True)
class Wire:
    """One message ready to send: MLLP when `path` is None, else an HTTP POST to `path`."""

    step: Step
    body: bytes
    path: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def _hl7_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%d%H%M%S") + "+0000"


def _iso(t: Any) -> Any:
    return t.astimezone(UTC).isoformat() if isinstance(t, datetime) else t


class Encoder:
    def __init__(self, directory: dict[str, Credentials], sim_start: datetime) -> None:
        self.directory = directory
        self.sim_start = sim_start

    def encode(self, step: Step, journey_start: datetime, product: str) -> Wire:
        now = journey_start + step.stamp
        if step.event == "malformed":
            body = b'{"message_id": "' + step.key.encode() + b'", "commands": [{"event"'
            return self._http(step, body, "/api/messages")
        if step.boundary is Boundary.site_hl7:
            return Wire(step, self._hl7(step, now, product).encode())
        if step.event == "shipment.declared":
            return self._declare(step)
        if step.boundary is Boundary.mes and step.event in MES:
            return self._mes(step, now)
        if step.boundary is Boundary.courier and step.fault is Fault.swap_tracking:
            return self._epcis_scan(step, now)  # a handoff scan: a tracking number and the label's COI
        if step.boundary is Boundary.courier and step.event in TRACKING:
            return self._tracking(step, now)
        if step.event == "shipment.readings_reported":
            # the inbound leg's logger reports through EPCIS, the dry shipper's logger by webhook
            return self._epcis_readings(step) if step.data["leg"] == "inbound" else self._logger(step)
        envelope = {"message_id": step.key, "commands": [self._command(step, now)]}
        return self._http(step, orjson.dumps(envelope), "/api/messages")

    # -- HL7 v2 ---------------------------------------------------------------------------------
    def _hl7(self, step: Step, now: datetime, product: str) -> str:
        who = self.directory[step.sender]
        ids, d = step.ids, step.data
        kind = {
            "order.placed": "ORM^O01^ORM_O01",
            "collection.scheduled": "SIU^S12^SIU_S12",
            "infusion.scheduled": "SIU^S12^SIU_S12",
            "adt.noise": "ADT^A08^ADT_A01",
        }[step.event]
        msh = (
            f"MSH|^~\\&|{who.sending_application}|{who.sending_facility}|CGT_GATEWAY|CGT|{_hl7_time(now)}||"
            f"{kind}|{step.key}|P|2.5.1"
        )
        pid = (
            f"PID|1||{ids.mrn}^^^{who.mrn_authority}^MR~{ids.coi}^^^COI^RI||{ids.family_name}^{ids.given_name}"
            f"||{ids.birth_date:%Y%m%d}|{ids.sex}"
        )
        placer = f"{ids.placer}^{who.sending_application}"
        if step.event == "order.placed":
            return (
                "\r".join(
                    [
                        msh,
                        pid,
                        "PV1|1|O|ONC",
                        f"ORC|NW|{placer}|||SC||||{_hl7_time(now)}",
                        f"OBR|1|{placer}||{product}^Autologous CAR-T^ISBT128",
                    ]
                )
                + "\r"
            )
        if step.event == "adt.noise":  # another of the site's patients, not one of ours
            other = f"PID|1||NOISE{step.key}^^^{who.mrn_authority}^MR||Noise^Patient||19800101|U"
            return "\r".join([msh, f"EVN|A08|{_hl7_time(now)}", other, "PV1|1|I|WARD"]) + "\r"
        service = (
            "APHERESIS^Leukapheresis^L"
            if step.event == "collection.scheduled"
            else "CART-INFUSION^CAR-T infusion^L"
        )
        when = d.get("scheduled_start") or d["planned_at"]
        return (
            "\r".join(
                [
                    msh,
                    f"SCH|APT-{step.key}^{who.sending_application}|||||NEW^New booking|||||||||||||||||||||{placer}",
                    pid,
                    "RGS|1",
                    f"AIS|1||{service}|{_hl7_time(when)}|||240|min",
                ]
            )
            + "\r"
        )

    # -- JSON over HTTP ---------------------------------------------------------------------------
    def _http(self, step: Step, body: bytes, path: str) -> Wire:
        who = self.directory[step.sender]
        headers = [("Content-Type", "application/json")]
        if who.hmac_secret:
            stamp = str(int(time.time()))
            mac = hmac.new(who.hmac_secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            headers += [
                ("X-CGT-Partner", who.partner),
                ("X-CGT-Timestamp", stamp),
                ("X-CGT-Signature", f"sha256={mac}"),
            ]
        elif who.api_key:
            headers.append(("X-API-Key", who.api_key))
        return Wire(step, body, path, tuple(headers))

    def _signed(self, step: Step, body: bytes, path: str) -> Wire:
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

    def _tracking(self, step: Step, now: datetime) -> Wire:
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
        return self._signed(step, orjson.dumps(body), f"/couriers/{step.sender}/tracking")

    def _epcis(self, step: Step, events: list[dict[str, Any]], now: datetime) -> Wire:
        """A GS1 EPCIS 2.0 document on the courier's capture endpoint, signed like its webhooks."""
        document = {
            "@context": [EPCIS_CONTEXT, {"cgt": "https://cgt-gateway.example.org/epcis/"}],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": _iso(now),
            "id": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, step.key)}",
            "epcisBody": {"eventList": events},
        }
        wire = self._signed(step, orjson.dumps(document), f"/couriers/{step.sender}/epcis/capture")
        headers = tuple(h for h in wire.headers if h[0] != "Content-Type")
        extra = (("Content-Type", "application/ld+json"), ("GS1-EPCIS-Version", "2.0.0"))
        return Wire(step, wire.body, wire.path, (*headers, *extra))

    def _epcis_readings(self, step: Step) -> Wire:
        """The inbound leg's logger readings as an EPCIS sensor report of the shipment."""
        ids, readings = step.ids, step.data["readings"]
        last = readings[-1]["at"]
        event = {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, step.key + '/1')}",
            "eventTime": _iso(last),
            "eventTimeZoneOffset": "+00:00",
            "epcList": [],
            "action": "OBSERVE",
            "bizStep": "sensor_reporting",
            "bizTransactionList": [{"type": "bol", "bizTransaction": f"{BOL}:{ids.inbound_tracking}"}],
            "sensorElementList": [
                {
                    "sensorMetadata": {"time": _iso(r["at"]), "deviceID": ids.inbound_logger},
                    "sensorReport": [{"type": "Temperature", "value": r["temperature_c"], "uom": "CEL"}],
                }
                for r in readings
            ],
        }
        return self._epcis(step, [event], last)

    def _epcis_scan(self, step: Step, now: datetime) -> Wire:
        """A handoff scan at the manufacturer's dock: the tracking number and the label's COI."""
        ids = step.ids
        event = {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, step.key + '/1')}",
            "eventTime": _iso(now),
            "eventTimeZoneOffset": "+00:00",
            "epcList": [],
            "action": "OBSERVE",
            "bizStep": "arriving",
            "disposition": "in_transit",
            "bizTransactionList": [{"type": "bol", "bizTransaction": f"{BOL}:{ids.inbound_tracking}"}],
            "cgt:coi": ids.coi,
        }
        return self._epcis(step, [event], now)

    def _logger(self, step: Step) -> Wire:
        """The outbound dry shipper's logger: a batch of entries in Tive's webhook shape, the
        shipper named by its SSCC."""
        ids = step.ids
        entries = [
            {
                "DeviceId": ids.outbound_logger,
                "DeviceName": ids.outbound_logger,
                "EntryTimeEpoch": int(r["at"].timestamp() * 1000),
                "EntryTimeUtc": r["at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Temperature": {"Celsius": r["temperature_c"]},
                "Battery": {"Percentage": 80},
                "Shipper": {"Serial": ids.outbound_sscc, "Ln2LevelPercentage": 70.0, "State": "Charged"},
            }
            for r in step.data["readings"]
        ]
        return self._signed(step, orjson.dumps(entries), f"/couriers/{step.sender}/telemetry")

    def _mes(self, step: Step, now: datetime) -> Wire:
        """An MES event in the gateway's CloudEvents dialect, on POST /mes/{manufacturer}/events."""
        ids, d = step.ids, step.data
        kind, data = MES[step.event], {}
        if kind == "slot_confirmed":
            data = {"slot_id": f"SLOT-{ids.batch}", "slot_start": _iso(d["slot_start"])}
        elif kind == "material_received":
            data = {
                "scanned": {"coi": ids.coi, "din": ids.din_scanned},
                "received_at": _iso(now),
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
            "time": _iso(now),
            "datacontenttype": "application/json",
            "data": data,
        }
        who = self.directory[step.sender]
        headers = (("Content-Type", "application/cloudevents+json"), ("X-API-Key", who.api_key or ""))
        return Wire(step, orjson.dumps(event), f"/mes/{step.sender}/events", headers)

    def _declare(self, step: Step) -> Wire:
        ids, leg = step.ids, step.data["leg"]
        body: dict[str, Any] = {
            "leg": leg,
            "courier": step.data["courier"],
            "tracking_number": ids.inbound_tracking if leg == "inbound" else ids.outbound_tracking,
            "logger_id": ids.inbound_logger if leg == "inbound" else ids.outbound_logger,
        }
        if leg == "outbound":
            body["sscc"] = ids.outbound_sscc
        wire = self._http(step, orjson.dumps(body), f"/api/orders/{ids.coi}/shipments")
        return Wire(step, wire.body, wire.path, (*wire.headers, ("Idempotency-Key", step.key)))

    def _command(self, step: Step, now: datetime) -> dict[str, Any]:
        ids, d, sender = step.ids, step.data, step.sender
        coi = {"namespace": "coi", "value": ids.coi}
        batch = {"namespace": f"mes:{sender}:batch", "value": ids.batch}
        payload: dict[str, Any] = {"occurred_at": _iso(now)}
        refs, binds = [coi], []
        event = step.event
        if event == "slot.confirmed":
            payload |= {
                "manufacturer": {"id": sender},
                "slot_id": f"SLOT-{ids.n}",
                "slot_start": _iso(d["slot_start"]),
            }
        elif event == "collection.completed":
            din = {"namespace": "isbt128:din", "value": ids.din}
            refs, binds = [coi, din], [din]
            payload |= {"collected_at": _iso(d["collected_at"]), "din": ids.din}
        elif event in ("shipment.picked_up", "shipment.delivered"):
            tracking = ids.inbound_tracking if d["leg"] == "inbound" else ids.outbound_tracking
            refs = [{"namespace": f"courier:{sender}:tracking", "value": tracking}, coi]
            payload |= {"shipment_id": tracking, "location": "SIM-DEPOT", "custodian": sender}
        elif event == "shipment.readings_reported":
            logger = ids.inbound_logger if d["leg"] == "inbound" else ids.outbound_logger
            refs = [{"namespace": f"courier:{sender}:logger", "value": logger}]
            payload |= {
                "shipment_id": logger,
                "device_id": logger,
                "readings": [
                    {"at": _iso(r["at"]), "temperature_c": r["temperature_c"]} for r in d["readings"]
                ],
            }
        elif event == "manufacturing.material_received":
            refs = [coi, {"namespace": "isbt128:din", "value": ids.din}]
            payload |= {
                "manufacturer": {"id": sender},
                "din": ids.din_scanned,
                "scanned_coi": ids.coi,
                "temperature_c": d["temperature_c"],
                "condition": d["condition"],
            }
        elif event == "manufacturing.started":
            refs, binds = [coi, batch], [batch]
            payload |= {"batch_id": ids.batch}
        elif event.startswith("manufacturing."):
            refs = [batch]
            payload |= {"batch_id": ids.batch}
            if event == "manufacturing.step_completed":
                payload["step"] = d["step"]
            if event == "manufacturing.qc_result":
                payload |= {"test": d["test"], "result": "pass"}
            if event == "manufacturing.released":
                payload["certificate_of_analysis"] = f"COA-{ids.batch}"
        elif event == "order.resumed":
            payload["reason"] = "hold investigated: the right bag, the right order"
        elif event == "infusion.completed":
            payload |= {"infused_at": _iso(d["infused_at"])}
        return {"event": event, "refs": refs, "binds": binds, "payload": payload}
