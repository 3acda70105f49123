"""The container files, checked without a Docker engine: every path they copy exists, every
setting they pass is one the gateway reads, and the services wait for each other's health."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gateway.settings import ROOT, Settings

DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
KNOWN = {f"CGT_{name.upper()}" for name in Settings.model_fields}


def test_the_image_copies_what_exists_and_runs_the_gateway() -> None:
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, flags=re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    assert 'CMD ["cgt-gateway", "serve"]' in DOCKERFILE
    assert "USER cgt" in DOCKERFILE  # not root
    for name in re.findall(r"\b(CGT_[A-Z_]+)=", DOCKERFILE):
        assert name in KNOWN, name


def test_compose_wires_the_gateway_to_healthy_postgres_and_rabbitmq() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"gateway", "relay", "rabbitmq", "postgres"}
    gateway = services["gateway"]
    assert gateway["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "rabbitmq": {"condition": "service_healthy"},
    }
    assert set(gateway["environment"]) <= KNOWN
    assert gateway["environment"]["CGT_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert Path(ROOT / "docker" / gateway["build"]["context"] / gateway["build"]["dockerfile"]).is_file()
    for name in ("rabbitmq", "postgres"):
        assert "healthcheck" in services[name]


def test_compose_runs_the_relay_beside_the_gateway_on_the_same_database_and_broker() -> None:
    gateway, relay = COMPOSE["services"]["gateway"], COMPOSE["services"]["relay"]
    assert gateway["environment"]["CGT_RELAY"] == "separate"
    assert relay["command"] == ["cgt-gateway", "relay"]
    for setting in ("CGT_DATABASE_URL", "CGT_AMQP_URL"):
        assert relay["environment"][setting] == gateway["environment"][setting]
    assert set(relay["environment"]) <= KNOWN
    assert relay["build"] == gateway["build"] and relay["depends_on"] == gateway["depends_on"]
    assert relay["healthcheck"] == {"disable": True}
