import hashlib
import hmac
from pathlib import Path

import pytest

from gateway.errors import ConfigError, NotAuthenticated, NotPermitted
from gateway.partners import load_partners
from gateway.settings import Settings
from tests.support.builders import event, mrn, placer

DEMO = Settings().partners_file


def sign(secret: str, ts: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()


def test_demo_partners_authenticate_with_their_documented_credentials() -> None:
    partners = load_partners(DEMO, env="development")
    assert partners.by_api_key("demo-hospital-key").id == "demo-hospital"
    assert partners.by_api_key("demo-manufacturer-key").id == "demo-manufacturer"
    body = b'{"x": 1}'
    sig = sign("demo-courier-secret", "1000", body)
    assert partners.verify_hmac("demo-courier", body, "1000", sig, now=1010).id == "demo-courier"
    assert partners.by_mllp("DEMO_EHR", "DEMO_HOSPITAL", "127.0.0.1").id == "demo-hospital"


@pytest.mark.parametrize("key", [None, "", "demo-hospital-kez", "x" * 100])
def test_wrong_api_keys_are_refused(key: str | None) -> None:
    with pytest.raises(NotAuthenticated):
        load_partners(DEMO, env="development").by_api_key(key)


def test_hmac_refuses_a_tampered_body_a_stale_timestamp_and_a_missing_signature() -> None:
    partners = load_partners(DEMO, env="development")
    sig = sign("demo-courier-secret", "1000", b"body")
    with pytest.raises(NotAuthenticated):
        partners.verify_hmac("demo-courier", b"bodY", "1000", sig, now=1000)
    with pytest.raises(NotAuthenticated):
        partners.verify_hmac("demo-courier", b"body", "1000", sig, now=1000 + 301)
    with pytest.raises(NotAuthenticated):
        partners.verify_hmac("demo-courier", b"body", "1000", None, now=1000)


def test_mllp_senders_must_match_name_facility_and_address() -> None:
    partners = load_partners(DEMO, env="development")
    with pytest.raises(NotAuthenticated):
        partners.by_mllp("DEMO_EHR", "DEMO_HOSPITAL", "10.1.2.3")
    with pytest.raises(NotAuthenticated):
        partners.by_mllp("OTHER", "DEMO_HOSPITAL", "127.0.0.1")


def test_demo_credentials_are_refused_in_production() -> None:
    with pytest.raises(ConfigError, match="demo partners are refused"):
        load_partners(DEMO, env="production")


def test_a_production_partner_without_its_secret_in_the_environment_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "partners.yaml"
    path.write_text(
        "partners:\n  - id: acme-courier\n    kind: courier\n    adapter: canonical-json\n"
        "    auth:\n      hmac_secret: {env: CGT_SECRET_ACME_UNSET}\n"
    )
    with pytest.raises(ConfigError, match="CGT_SECRET_ACME_UNSET"):
        load_partners(path, env="production")


def test_a_partner_carries_only_its_own_and_shared_identifiers() -> None:
    partners = load_partners(DEMO, env="development")
    hospital = partners.get("demo-hospital")
    hospital.check_commands([event("order.cancelled", placer("PO-1"), mrn("M1"))])
    with pytest.raises(NotPermitted):
        partners.get("demo-courier").check_commands([event("order.cancelled", placer("PO-1"))])


def test_a_broken_partner_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "partners.yaml"
    path.write_text("partners:\n  - id: Bad Id\n    kind: site\n    adapter: x\n")
    with pytest.raises(ConfigError):
        load_partners(path, env="development")
