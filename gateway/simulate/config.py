"""The partners of a simulation. One of each kind: the demo partners the gateway ships with, so
`cgt-gateway simulate` runs against `make run` as it is. More: `cgt-gateway simulate config`
writes a partner file, the sites' HL7 profiles and the product assignments into a folder, and
prints the settings to start the gateway (or its replicas) with."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from gateway.simulate.model import Credentials, Parties

ROOT = Path(__file__).resolve().parents[2]
DEMO_PRODUCT = "S1234"


@dataclass(frozen=True)
class Cast:
    """Who takes part, how the simulator signs in as each, and the product each manufacturer makes."""

    parties: list[Parties]
    credentials: dict[str, Credentials]


def demo() -> Cast:
    creds = {
        "demo-hospital": Credentials(
            "demo-hospital",
            api_key="demo-hospital-key",
            sending_application="DEMO_EHR",
            sending_facility="DEMO_HOSPITAL",
            mrn_authority="DEMOHOSP",
        ),
        "demo-courier": Credentials(
            "demo-courier",
            hmac_secret="demo-courier-secret",
            webhook_secret="whsec_ZGVtby1jb3VyaWVyLXNlY3JldA==",
        ),
        "demo-manufacturer": Credentials("demo-manufacturer", api_key="demo-manufacturer-key"),
    }
    return Cast([Parties("demo-hospital", "demo-courier", "demo-manufacturer", DEMO_PRODUCT)], creds)


def names(sites: int, couriers: int, manufacturers: int) -> tuple[list[str], list[str], list[str]]:
    return (
        [f"sim-site-{i:02d}" for i in range(1, sites + 1)],
        [f"sim-courier-{i:02d}" for i in range(1, couriers + 1)],
        [f"sim-mfr-{i:02d}" for i in range(1, manufacturers + 1)],
    )


def product_of(manufacturer_index: int) -> str:
    return f"S7{manufacturer_index:03d}"


def cast(sites: int, couriers: int, manufacturers: int) -> Cast:
    """Every combination appears: journey n goes to site n % S, courier n % C, manufacturer n % M
    (through the product the manufacturer makes)."""
    if (sites, couriers, manufacturers) == (1, 1, 1):
        return demo()
    s, c, m = names(sites, couriers, manufacturers)
    creds = {
        site: Credentials(
            site,
            api_key=f"{site}-key",
            sending_application="SIM_EHR",
            sending_facility=site.upper().replace("-", "_"),
            mrn_authority="SIMHOSP",
        )
        for site in s
    }
    creds |= {courier: Credentials(courier, hmac_secret=f"{courier}-secret") for courier in c}
    creds |= {mfr: Credentials(mfr, api_key=f"{mfr}-key") for mfr in m}
    count = sites * couriers * manufacturers
    parties = [
        Parties(
            s[n % sites],
            c[(n // sites) % couriers],
            m[(n // (sites * couriers)) % manufacturers],
            product_of(1 + (n // (sites * couriers)) % manufacturers),
        )
        for n in range(count)
    ]
    return Cast(parties, creds)


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def write(folder: Path, sites: int, couriers: int, manufacturers: int) -> dict[str, str]:
    """Write the gateway's side of `cast(...)` under `folder`; return the settings to start it with."""
    s, c, m = names(sites, couriers, manufacturers)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hl7v2").mkdir(exist_ok=True)
    demo_profile = (ROOT / "mappings" / "hl7v2" / "demo-hospital.yaml").read_text(encoding="utf-8")
    partners: list[dict[str, object]] = []
    for site in s:
        facility = site.upper().replace("-", "_")
        partners.append(
            {
                "id": site,
                "kind": "site",
                "name": f"Simulated {site}",
                "adapter": "canonical-json",
                "profile": site,
                "demo": True,
                "auth": {
                    "api_key_sha256": [_sha(f"{site}-key")],
                    "mllp": {"sending_application": "SIM_EHR", "sending_facility": facility},
                },
            }
        )
        (folder / "hl7v2" / f"{site}.yaml").write_text(
            demo_profile.replace("demo-hospital", site), encoding="utf-8"
        )
    for courier in c:
        env = "CGT_SECRET_" + courier.upper().replace("-", "_")
        partners.append(
            {
                "id": courier,
                "kind": "courier",
                "name": f"Simulated {courier}",
                "adapter": "canonical-json",
                "demo": True,
                "auth": {"hmac_secret": {"env": env, "demo_default": f"{courier}-secret"}},
            }
        )
    for mfr in m:
        partners.append(
            {
                "id": mfr,
                "kind": "manufacturer",
                "name": f"Simulated {mfr}",
                "adapter": "canonical-json",
                "demo": True,
                "auth": {"api_key_sha256": [_sha(f"{mfr}-key")]},
            }
        )
    header = "# Written by `cgt-gateway simulate config`: simulated partners, public credentials.\n"
    (folder / "partners.yaml").write_text(
        header + yaml.safe_dump({"partners": partners}, sort_keys=False), encoding="utf-8"
    )
    products = [
        {"system": "isbt128", "code": product_of(i), "manufacturer": mfr} for i, mfr in enumerate(m, 1)
    ]
    (folder / "assignments.yaml").write_text(
        header + yaml.safe_dump({"products": products}, sort_keys=False), encoding="utf-8"
    )
    return {
        "CGT_PARTNERS_FILE": str(folder / "partners.yaml"),
        "CGT_PROFILE_DIRS": json.dumps({"hl7v2": str(folder / "hl7v2")}),
        "CGT_ASSIGNMENTS_FILE": str(folder / "assignments.yaml"),
    }
