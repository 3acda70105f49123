"""Production means no demo secrets: every published demo credential is known by its fingerprint,
and a production start refuses it wherever it is configured, whatever the file says about itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from adapters.fhir.oauth import check_credentials
from adapters.fhir.profile import PROFILES_DIR, load_profile, load_profiles
from gateway.demo_credentials import PUBLISHED, jwk_thumbprint, secret_fingerprint
from gateway.entrypoints.http import DEMO_OPERATOR_KEY, check_operator_key
from gateway.errors import ConfigError
from gateway.partners import load_partners
from gateway.service.operators import DEMO_USERS
from gateway.settings import Settings

DEMO = Settings().partners_file
DEMO_SECRETS = ("demo-hospital-key", "demo-manufacturer-key", "demo-courier-secret", "demo-operator-key")


def without_demo_flags(tmp_path: Path) -> Path:
    """The demo partner file, byte for byte, less its `demo: true` lines."""
    text = DEMO.read_text(encoding="utf-8")
    assert "demo: true" in text
    path = tmp_path / "partners.yaml"
    path.write_text("\n".join(line for line in text.splitlines() if line.strip() != "demo: true"))
    return path


def test_a_production_serve_refuses_the_demo_file_without_its_demo_flags(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CGT_ENV": "production",
        "CGT_PARTNERS_FILE": str(without_demo_flags(tmp_path)),
        "CGT_SECRET_DEMO_COURIER": "demo-courier-secret",
        "CGT_SECRET_DEMO_COURIER_WEBHOOKS": "whsec_ZGVtby1jb3VyaWVyLXNlY3JldA==",
        "CGT_OPERATOR_KEY": "demo-operator-key",
        "CGT_AUDIT_KEY": "an-audit-key-of-this-site-only-0123456789",  # so that the partner file is reached
        "CGT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        "CGT_HTTP_PORT": "1",  # never reached: it must refuse before it listens
    }
    run = subprocess.run(
        [sys.executable, "-m", "gateway.entrypoints.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = run.stdout + run.stderr
    assert run.returncode == 2, said
    assert "partner demo-hospital: auth.api_key_sha256[0] is the demo hospital's API key" in said
    assert "partner demo-manufacturer: auth.api_key_sha256[0]" in said
    assert "partner demo-courier: auth.hmac_secret (CGT_SECRET_DEMO_COURIER)" in said
    webhooks = "partner demo-courier: auth.standard_webhooks.secrets[0] (CGT_SECRET_DEMO_COURIER_WEBHOOKS)"
    assert f"{webhooks} is the demo courier's webhook secret" in said
    assert "whsec_ZGVtby1jb3VyaWVyLXNlY3JldA==" not in said
    assert not any(secret in said for secret in DEMO_SECRETS)


def test_the_operator_key_and_the_fhir_credentials_are_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    production = Settings(env="production")
    monkeypatch.setenv("CGT_OPERATOR_KEY", "demo-operator-key")
    with pytest.raises(ConfigError, match="CGT_OPERATOR_KEY is the demo operator key") as operator:
        check_operator_key(production)
    monkeypatch.setenv("CGT_OPERATOR_KEY", "an operator key of our own")
    check_operator_key(production)
    monkeypatch.setenv("CGT_SECRET_DEMO_HOSPITAL_HOOK", "demo-hospital-hook-secret")
    with pytest.raises(ConfigError) as fhir:
        check_credentials(production)  # the shipped profile directory holds the demo key pair
    message = str(fhir.value)
    assert (
        "client demo-hospital-backend key demo-hospital-backend-1 is the demo hospital backend's" in message
    )
    assert "notifications secret (CGT_SECRET_DEMO_HOSPITAL_HOOK)" in message
    assert "demo-hospital-hook-secret" not in message and "demo-operator-key" not in str(operator.value)
    check_credentials(Settings(env="development"))  # outside production the demo runs as shipped


def test_own_credentials_start_in_production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document = yaml.safe_load(without_demo_flags(tmp_path).read_text())
    for partner in document["partners"]:
        keys = partner["auth"].get("api_key_sha256")
        if keys:
            partner["auth"]["api_key_sha256"] = [secret_fingerprint(f"{partner['id']}-own-key")]
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("CGT_SECRET_DEMO_COURIER", "a secret of our own")
    monkeypatch.setenv("CGT_SECRET_DEMO_LAB_COURIER", "whsec_YS13ZWJob29rLXNlY3JldC1vZi1vdXItb3du")
    monkeypatch.setenv("CGT_SECRET_DEMO_COURIER_WEBHOOKS", "whsec_b3VyLW93bi1jb3VyaWVyLXNlY3JldA==")
    assert load_partners(path, env="production").by_api_key("demo-hospital-own-key").id == "demo-hospital"
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    text = (PROFILES_DIR / "demo-hospital.yaml").read_text()
    (profiles / "demo-hospital.yaml").write_text(text.replace("uXDnZnm0", "vXDnZnm0"))  # another key
    monkeypatch.setenv("CGT_PROFILE_DIRS", orjson.dumps({"fhir": str(profiles)}).decode())
    monkeypatch.delenv("CGT_SECRET_DEMO_HOSPITAL_HOOK", raising=False)
    try:
        check_credentials(Settings(env="production"))
    finally:
        monkeypatch.delenv("CGT_PROFILE_DIRS")
        load_profiles(Settings())


def test_the_list_holds_every_credential_the_project_publishes() -> None:
    """Each demo credential in the shipped files and code is in PUBLISHED (so a new one cannot be
    added without it)."""
    shipped: list[str | None] = [secret_fingerprint(DEMO_OPERATOR_KEY)]
    for partner in yaml.safe_load(DEMO.read_text())["partners"]:
        shipped += partner["auth"].get("api_key_sha256", [])
        if "hmac_secret" in partner["auth"]:
            shipped.append(secret_fingerprint(partner["auth"]["hmac_secret"]["demo_default"]))
        for scheme in ("standard_webhooks", "header_hmac"):
            for ref in partner["auth"].get(scheme, {}).get("secrets", []):
                shipped.append(secret_fingerprint(ref["demo_default"]))
    profile = load_profile("demo-hospital")
    shipped += [jwk_thumbprint(k) for c in profile.oauth.clients for k in c.jwks["keys"]]
    assert profile.notifications is not None and profile.notifications.secret.demo_default
    shipped.append(secret_fingerprint(profile.notifications.secret.demo_default))
    shipped += [secret_fingerprint(password) for *_, password in DEMO_USERS]
    assert set(shipped) == set(PUBLISHED)


def test_the_jwk_thumbprint_is_rfc_7638() -> None:
    # RFC 7638 §3.1's example key and its thumbprint
    key = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKR"
        "XjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaS"
        "qzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ"
        "-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert jwk_thumbprint({"kty": "oct", "k": "x"}) is None


def test_an_uppercase_hash_of_a_demo_key_is_refused_all_the_same(tmp_path: Path) -> None:
    text = without_demo_flags(tmp_path).read_text()
    demo_hash = secret_fingerprint("demo-hospital-key")
    (tmp_path / "upper.yaml").write_text(text.replace(demo_hash, demo_hash.upper()))
    with pytest.raises(ConfigError, match=r"partner demo-hospital: auth.api_key_sha256\[0\]"):
        load_partners(tmp_path / "upper.yaml", env="production")
