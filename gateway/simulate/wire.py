"""How each step crosses its boundary: the bytes a site's EHR, a courier or a manufacturer's MES
would send for it, in the dialect that boundary speaks, and where they go.

HL7 v2 (ORM^O01, SIU^S12, ADT^A08) over MLLP and FHIR R4 over HTTP (the collection and the
infusion) for what EHRs send; the gateway's shipments API for the legs a site books; the partners'
dialects (gateway.simulate.dialects) for couriers and manufacturers.
Payloads are synthetic: simulated patients named `Sim<run><n>`, the examples' facility code.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.simulate import fhir
from gateway.simulate.dialects import MES, TRACKING, PartnerDialects
from gateway.simulate.model import Boundary, Credentials, Fault, Step, Wire, iso


def _hl7_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%d%H%M%S") + "+0000"


class Encoder:
    def __init__(self, directory: dict[str, Credentials], sim_start: datetime) -> None:
        self.directory = directory
        self.sim_start = sim_start
        self.partners = PartnerDialects(directory)

    def encode(self, step: Step, journey_start: datetime, product: str) -> Wire:
        now = journey_start + step.stamp
        if step.event == "malformed" and step.boundary is Boundary.site_http:
            return self._fhir(
                step, fhir.BASE, b'{"resourceType": "Bundle", "type": "transaction", "entry": [{'
            )
        if step.event == "malformed":
            body = b'{"message_id": "' + step.key.encode() + b'", "commands": [{"event"'
            return self._http(step, body, "/api/messages")
        if step.event == "collection.completed":
            return self._fhir(step, *fhir.collection(step))
        if step.event == "infusion.completed":
            return self._fhir(step, *fhir.infusion(step, now))
        if step.boundary is Boundary.site_hl7:
            return Wire(step, self._hl7(step, now, product).encode())
        if step.event == "shipment.declared":
            return self._declare(step)
        if step.boundary in (Boundary.mes, Boundary.mes_amqp) and step.event in MES:
            return self.partners.mes(step, now)
        if step.boundary is Boundary.courier and step.fault is Fault.swap_tracking:
            return self.partners.epcis_scan(
                step, now
            )  # a handoff scan: a tracking number and the label's COI
        if step.boundary is Boundary.courier and step.event in TRACKING:
            return self.partners.tracking(step, now)
        if step.event == "shipment.readings_reported":
            # the inbound leg's logger reports through EPCIS, the dry shipper's logger by webhook
            leg = step.data["leg"]
            return self.partners.epcis_readings(step) if leg == "inbound" else self.partners.logger(step)
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

    def _fhir(self, step: Step, path: str, document: dict[str, Any] | bytes) -> Wire:
        """A site's FHIR request (its API key: a backend's token is the other way in)."""
        body = document if isinstance(document, bytes) else orjson.dumps(document)
        who = self.directory[step.sender]
        headers = (("Content-Type", "application/fhir+json"), ("X-API-Key", who.api_key or ""))
        return Wire(step, body, path, headers)

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
        payload: dict[str, Any] = {"occurred_at": iso(now)}
        refs, binds = [coi], []
        event = step.event
        if event == "slot.confirmed":
            payload |= {
                "manufacturer": {"id": sender},
                "slot_id": f"SLOT-{ids.n}",
                "slot_start": iso(d["slot_start"]),
            }
        elif event in ("shipment.picked_up", "shipment.delivered"):
            tracking = ids.inbound_tracking if d["leg"] == "inbound" else ids.outbound_tracking
            refs = [{"namespace": f"courier:{sender}:tracking", "value": tracking}, coi]
            payload |= {"shipment_id": tracking, "location": "SIM-DEPOT", "custodian": sender}
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
        return {"event": event, "refs": refs, "binds": binds, "payload": payload}
