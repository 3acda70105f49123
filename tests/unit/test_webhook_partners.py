"""Partner files' webhook secrets: one or two a scheme, from the environment, demo defaults only
outside production, and production refusing unset or published ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.errors import ConfigError
from gateway.partners import load_partners

DEMO_LAB_SECRET = "whsec_ZGVtby1sYWItY291cmllci1zaWduaW5nLXNlY3JldCE="


def partner_file(tmp_path: Path, auth: dict[str, Any], demo: bool = False) -> Path:
    partner = {
        "id": "lab-courier",
        "kind": "courier",
        "adapter": "example-webhook",
        "demo": demo,
        "auth": auth,
    }
    path = tmp_path / "partners.yaml"
    path.write_text(yaml.safe_dump({"partners": [partner]}), encoding="utf-8")
    return path


ROTATING = {
    "standard_webhooks": {
        "secrets": [
            {"env": "CGT_TEST_LAB_OLD", "demo_default": "whsec_b2xk"},
            {"env": "CGT_TEST_LAB_NEW"},
        ]
    },
    "header_hmac": {"secrets": [{"env": "CGT_TEST_LAB_VENDOR"}]},
}


def test_secrets_are_read_per_scheme_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGT_TEST_LAB_NEW", "whsec_bmV3")
    monkeypatch.setenv("CGT_TEST_LAB_VENDOR", "sécret")
    partners = load_partners(partner_file(tmp_path, ROTATING), env="test")
    courier = partners.get("lab-courier")
    assert partners.signing_secrets(courier, "standard-webhooks") == ("whsec_b2xk", "whsec_bmV3")
    assert partners.signing_secrets(courier, "header-hmac") == ("sécret",)
    assert partners.signing_secrets(courier, "cgt-hmac") == ()


def test_production_needs_every_secret_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGT_TEST_LAB_OLD", "whsec_b2xk")
    monkeypatch.setenv("CGT_TEST_LAB_VENDOR", "a-vendor-secret")
    monkeypatch.delenv("CGT_TEST_LAB_NEW", raising=False)
    with pytest.raises(ConfigError, match="secret CGT_TEST_LAB_NEW is not set"):
        load_partners(partner_file(tmp_path, ROTATING), env="production")
    monkeypatch.setenv("CGT_TEST_LAB_NEW", "whsec_bmV3")
    partners = load_partners(partner_file(tmp_path, ROTATING), env="production")
    assert partners.signing_secrets(partners.get("lab-courier"), "standard-webhooks") == (
        "whsec_b2xk",
        "whsec_bmV3",
    )


def test_production_refuses_the_published_demo_webhook_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CGT_TEST_LAB_SECRET", DEMO_LAB_SECRET)
    auth = {"standard_webhooks": {"secrets": [{"env": "CGT_TEST_LAB_SECRET"}]}}
    with pytest.raises(ConfigError) as refused:
        load_partners(partner_file(tmp_path, auth), env="production")
    said = str(refused.value)
    assert "partner lab-courier: auth.standard_webhooks.secrets[0] (CGT_TEST_LAB_SECRET)" in said
    assert "the demo lab courier's webhook secret" in said and DEMO_LAB_SECRET not in said


def test_more_than_two_live_secrets_are_refused(tmp_path: Path) -> None:
    three = {"standard_webhooks": {"secrets": [{"env": f"CGT_TEST_S{i}"} for i in range(3)]}}
    with pytest.raises(ConfigError, match="at most 2"):
        load_partners(partner_file(tmp_path, three), env="test")
