"""Couriers for carrier-tracking tests, registered as tests/support/partners.py does: the demo
partners plus one courier a carrier shape, each with its tracking profile in a folder of its own
(given to the gateway by `CGT_PROFILE_DIRS`), and helpers to sign their webhooks."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import time
import unicodedata
from pathlib import Path
from typing import Any

import yaml

from gateway.sdk import StandardWebhooks
from gateway.settings import ROOT, Settings

OLD_SECRET = "whsec_b2xkLXRyYWNraW5nLXNlY3JldC1vZi10aGUtY291cmllcg=="
NEW_SECRET = "whsec_bmV3LXRyYWNraW5nLXNlY3JldC1vZi10aGUtY291cmllcg=="
EASYPOST_SECRET = "sécret"  # EasyPost's own published fixture secret (NFKD-normalised when used)
CGT_SECRET = "test-carrier-booking-secret"  # each courier confirms its bookings on /api/messages
SW = StandardWebhooks()

DHL_URL = "https://dhl.test/track/shipments?trackingNumber={tracking_number}"
UPS_URL = "https://ups.test/api/track/v1/details/{tracking_number}"
UPS_TOKEN_URL = "https://ups.test/security/v1/oauth/token"
UPS_CLIENT = ("ups-test-client", "ups-test-client-secret")
FEDEX_URL = "https://fedex.test/track/v1/trackingnumbers"
FEDEX_BODY = '{"includeDetailedScans": true, "trackingInfo": [{"trackingNumberInfo": {"trackingNumber": "{tracking_number}"}}]}'

PROFILES: dict[str, dict[str, Any]] = {
    "test-ups": {"shape": "ups"},
    "test-easypost": {"shape": "easypost"},
    "test-aftership": {"shape": "aftership", "references": {"order_id": "coi"}},
    "test-shippo": {"shape": "shippo", "references": {"metadata": "coi"}},
    "test-dhl": {
        "shape": "dhl",
        "references": {"customer-reference": "coi"},
        "poll": {
            "url": DHL_URL,
            "secret_headers": {"DHL-API-Key": {"env": "CGT_TEST_DHL_KEY", "demo_default": "dhl-test-key"}},
            "interval_s": 600,
        },
    },
    "test-ups-api": {
        "shape": "ups",
        "poll": {
            "url": UPS_URL,
            "interval_s": 600,
            "oauth": {
                "token_url": UPS_TOKEN_URL,
                "client_id": {"env": "CGT_TEST_UPS_CLIENT_ID", "demo_default": UPS_CLIENT[0]},
                "client_secret": {"env": "CGT_TEST_UPS_CLIENT_SECRET", "demo_default": UPS_CLIENT[1]},
            },
        },
    },
    "test-fedex": {
        "shape": "fedex",
        "references": {"SHIPPER_REFERENCE": "coi"},
        "poll": {"url": FEDEX_URL, "method": "POST", "body": FEDEX_BODY, "interval_s": 600},
    },
}


def _auth(courier: str) -> dict[str, Any]:
    env = courier.upper().replace("-", "_")
    auth: dict[str, Any] = {"hmac_secret": {"env": f"CGT_{env}_CGT", "demo_default": CGT_SECRET}}
    if courier == "test-easypost":
        auth["header_hmac"] = {"secrets": [{"env": f"CGT_{env}_HMAC", "demo_default": EASYPOST_SECRET}]}
    else:
        secrets = [{"env": f"CGT_{env}_OLD", "demo_default": OLD_SECRET}]
        secrets.append({"env": f"CGT_{env}_NEW", "demo_default": NEW_SECRET})
        auth["standard_webhooks"] = {"secrets": secrets}
    return auth


def with_carriers(directory: Path) -> Settings:
    """Settings for a gateway with the demo partners and the test couriers, in `directory`."""
    document = yaml.safe_load(Settings().partners_file.read_text(encoding="utf-8"))
    profiles = directory / "tracking-profiles"
    profiles.mkdir(exist_ok=True)
    shutil.copy(ROOT / "mappings" / "couriers" / "tracking" / "demo-courier.yaml", profiles)
    for courier, profile in PROFILES.items():
        document["partners"].append(
            {
                "id": courier,
                "kind": "courier",
                "adapter": "canonical-json",
                "dialects": ["carrier-tracking"],
                "demo": True,
                "auth": _auth(courier),
            }
        )
        (profiles / f"{courier}.yaml").write_text(yaml.safe_dump({"partner": courier, **profile}))
    partners = directory / "partners.yaml"
    partners.write_text(yaml.safe_dump(document), encoding="utf-8")
    return Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{directory}/gw.db",
        mllp_port=0,
        adapters="canonical-json,carrier-tracking",
        partners_file=partners,
        profile_dirs={"couriers/tracking": profiles},
    )


def standard_signed(
    body: bytes, message_id: str, *, secret: str = NEW_SECRET, at: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if at is None else at
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": SW.sign(secret, message_id, stamp, body),
        "Content-Type": "application/json",
    }


def easypost_signed(body: bytes, secret: str = EASYPOST_SECRET) -> dict[str, str]:
    key = unicodedata.normalize("NFKD", secret).encode()
    digest = hmac.new(key, body, hashlib.sha256).hexdigest()
    return {"X-Hmac-Signature": f"hmac-sha256-hex={digest}", "Content-Type": "application/json"}


def cgt_signed(partner: str, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(CGT_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-CGT-Partner": partner,
        "X-CGT-Timestamp": stamp,
        "X-CGT-Signature": f"sha256={digest}",
        "Content-Type": "application/json",
    }


HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}
OPERATOR = {"X-API-Key": "demo-operator-key"}


async def booked_order(http: Any, courier: str, tracking: str, n: int = 1) -> str:
    """An order placed and collected by the demo hospital, its inbound shipment booked with
    `courier` under `tracking`, and the courier's confirmation binding the tracking number in its
    namespace (what booking through the courier's API does). Returns the order's COI."""
    from tests.support.builders import coi, envelope_json, event, place

    placed = await http.post("/api/messages", content=envelope_json(f"place-{n}", place(n)), headers=HOSPITAL)
    assert placed.status_code == 201, placed.text
    order_coi: str = placed.json()["coi"]
    shipment = {
        "shipment_id": tracking,
        "direction": "to_manufacturer",
        "courier": courier,
        "tracking_number": tracking,
    }
    booked = envelope_json(
        f"book-{n}",
        event("collection.completed", coi(order_coi), collected_at="2026-11-09T07:00:00Z"),
        event("shipment.booked", coi(order_coi), shipment=shipment),
    )
    answer = await http.post("/api/messages", content=booked, headers=HOSPITAL)
    assert answer.status_code == 201, answer.text
    from gateway.canonical.ids import ExternalRef

    ref = ExternalRef(namespace=f"courier:{courier}:tracking", value=tracking)
    confirmed = envelope_json(
        f"confirm-{n}", event("shipment.booked", coi(order_coi), ref, binds=(ref,), shipment=shipment)
    )
    answer = await http.post("/api/messages", content=confirmed, headers=cgt_signed(courier, confirmed))
    assert answer.status_code == 201, answer.text
    return order_coi


async def order_of(http: Any, order_coi: str) -> dict[str, Any]:
    found = await http.get(f"/api/orders/{order_coi}", headers=OPERATOR)
    assert found.status_code == 200, found.text
    document: dict[str, Any] = found.json()
    return document
