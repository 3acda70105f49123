"""The partners of a simulation. One of each kind: the demo partners the gateway ships with, so
`cgt-gateway simulate` runs against `make run` as it is. More: `cgt-gateway simulate config`
writes a partner file, the sites' HL7 profiles and the product assignments into a folder, and
prints the settings to start the gateway (or its replicas) with."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from gateway.simulate.model import Credentials, Parties

ROOT = Path(__file__).resolve().parents[2]
DEMO_PRODUCT = "S1234"
HEADER = "# Written by `cgt-gateway simulate config`: simulated partners, public credentials.\n"
_TEMPERATURE_CLASSES = ROOT / "mappings" / "couriers" / "temperature_classes.yaml"


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
    creds |= {
        courier: Credentials(courier, hmac_secret=f"{courier}-secret", webhook_secret=webhook_secret(courier))
        for courier in c
    }
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


def webhook_secret(courier: str) -> str:
    """A simulated courier's Standard Webhooks secret (public, like the demo courier's)."""
    return "whsec_" + base64.b64encode(f"{courier}-webhook-secret".encode()).decode()


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _shipped(folder: Path, mappings: str, to: str) -> None:
    """The shipped profiles of a dialect (the demo partners', which stay), copied beside the
    simulated partners' own (the gateway reads one folder a dialect)."""
    (folder / to).mkdir(exist_ok=True)
    for path in (ROOT / "mappings" / mappings).glob("*.yaml"):
        shutil.copyfile(path, folder / to / path.name)


def _site_profiles(folder: Path, sites: list[str]) -> None:
    """Each site's HL7 v2 and FHIR profiles: the demo site's, for this site (the FHIR one without
    the demo's OAuth client and push: the simulator signs in with the site's API key)."""
    hl7 = (ROOT / "mappings" / "hl7v2" / "demo-hospital.yaml").read_text(encoding="utf-8")
    fhir = yaml.safe_load((ROOT / "mappings" / "fhir" / "demo-hospital.yaml").read_text(encoding="utf-8"))
    _shipped(folder, "hl7v2", "hl7v2")
    _shipped(folder, "fhir", "fhir")
    for site in sites:
        (folder / "hl7v2" / f"{site}.yaml").write_text(hl7.replace("demo-hospital", site), encoding="utf-8")
        own = {k: v for k, v in fhir.items() if k not in ("oauth", "notifications")}
        text = yaml.safe_dump(own, sort_keys=False).replace("demo-hospital", site)
        (folder / "fhir" / f"{site}.yaml").write_text(HEADER + text, encoding="utf-8")


def _courier_profiles(folder: Path, couriers: list[str]) -> None:
    """Each courier's carrier tracking comes in the UPS Track Alert shape (as the demo courier's)."""
    _shipped(folder, "couriers/tracking", "tracking")
    for courier in couriers:
        text = yaml.safe_dump({"partner": courier, "shape": "ups"}, sort_keys=False)
        (folder / "tracking" / f"{courier}.yaml").write_text(HEADER + text, encoding="utf-8")


def _cold_chain(folder: Path, manufacturers: int) -> Path:
    """The shipped temperature classes, with the simulated products (fresh in, cryogenic out)."""
    path = folder / "temperature_classes.yaml"
    table = yaml.safe_load(_TEMPERATURE_CLASSES.read_text(encoding="utf-8"))
    table["products"] += [
        {
            "system": "isbt128",
            "code": product_of(i),
            "inbound": "fresh",
            "outbound": "cryogenic",
            "viability_hours": 48,
        }
        for i in range(1, manufacturers + 1)
    ]
    path.write_text(HEADER + yaml.safe_dump(table, sort_keys=False), encoding="utf-8")
    return path


def write(folder: Path, sites: int, couriers: int, manufacturers: int) -> dict[str, str]:
    """Write the gateway's side of `cast(...)` under `folder` (beside the demo partners, which
    the shipped profiles name); return the settings to start it with."""
    s, c, m = names(sites, couriers, manufacturers)
    folder.mkdir(parents=True, exist_ok=True)
    shipped = yaml.safe_load((ROOT / "mappings" / "partners" / "demo.yaml").read_text(encoding="utf-8"))
    partners: list[dict[str, object]] = list(shipped["partners"])  # the demo partners stay
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
    for courier in c:
        env = "CGT_SECRET_" + courier.upper().replace("-", "_")
        partners.append(
            {
                "id": courier,
                "kind": "courier",
                "name": f"Simulated {courier}",
                "adapter": "canonical-json",
                "profile": courier,
                "dialects": ["carrier-tracking", "epcis", "tive-telemetry"],
                "demo": True,
                "auth": {
                    "hmac_secret": {"env": env, "demo_default": f"{courier}-secret"},
                    "standard_webhooks": {
                        "secrets": [{"env": f"{env}_WEBHOOKS", "demo_default": webhook_secret(courier)}]
                    },
                },
            }
        )
    for mfr in m:
        partners.append(
            {
                "id": mfr,
                "kind": "manufacturer",
                "name": f"Simulated {mfr}",
                "adapter": "canonical-json",
                "dialects": ["mes-cloudevents"],
                "profile": mfr,
                "demo": True,
                "auth": {"api_key_sha256": [_sha(f"{mfr}-key")]},
            }
        )
    (folder / "partners.yaml").write_text(
        HEADER + yaml.safe_dump({"partners": partners}, sort_keys=False), encoding="utf-8"
    )
    _site_profiles(folder, s)
    _courier_profiles(folder, c)
    assignments = yaml.safe_load((ROOT / "mappings" / "mes" / "assignments.yaml").read_text(encoding="utf-8"))
    assignments["products"] += [
        {"system": "isbt128", "code": product_of(i), "manufacturer": mfr} for i, mfr in enumerate(m, 1)
    ]
    (folder / "assignments.yaml").write_text(
        HEADER + yaml.safe_dump(assignments, sort_keys=False), encoding="utf-8"
    )
    dirs = {"hl7v2": folder / "hl7v2", "fhir": folder / "fhir", "couriers/tracking": folder / "tracking"}
    return {
        "CGT_PARTNERS_FILE": str(folder / "partners.yaml"),
        "CGT_PROFILE_DIRS": json.dumps({k: str(v) for k, v in dirs.items()}),
        "CGT_ASSIGNMENTS_FILE": str(folder / "assignments.yaml"),
        "CGT_TEMPERATURE_CLASSES_FILE": str(_cold_chain(folder, manufacturers)),
    }
