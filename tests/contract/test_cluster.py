"""The cluster's compose file and its configs, checked without a container engine: the settings
it passes are ones the gateway reads, HAProxy balances every gateway on the ports the gateways
listen on, RabbitMQ's three nodes know each other and default to quorum queues, the standby
streams from the slot the primary creates, and the simulator's command is one it accepts."""

from __future__ import annotations

import re

import typer.main
import yaml

from gateway.entrypoints.simulate_cli import simulate_app
from gateway.settings import ROOT, Settings

CLUSTER = ROOT / "docker" / "cluster"
COMPOSE = yaml.safe_load((CLUSTER / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
HAPROXY = (CLUSTER / "haproxy.cfg").read_text()
KNOWN = {f"CGT_{name.upper()}" for name in Settings.model_fields}


def _backend(name: str) -> list[tuple[str, str, int]]:
    block = re.search(rf"^backend {name}\n(.*?)(?=^\S|\Z)", HAPROXY, flags=re.M | re.S)
    assert block, name
    return [
        (s, h, int(p))
        for s, h, p in re.findall(r"^\s+server (\S+) ([\w-]+):(\d+)", block.group(1), flags=re.M)
    ]


def test_the_cluster_has_every_part_the_docs_describe() -> None:
    assert {
        "gateway-1",
        "gateway-2",
        "relay",
        "haproxy",
        "rabbitmq-1",
        "rabbitmq-2",
        "rabbitmq-3",
        "postgres-primary",
        "postgres-standby",
        "simulator",
    } <= set(SERVICES)
    gateways = [n for n, s in SERVICES.items() if n.startswith("gateway-")]
    for name in [*gateways, "relay", "simulator"]:
        env = SERVICES[name]["environment"]
        assert set(env) <= KNOWN, name
        assert (
            env["CGT_DATABASE_URL"].startswith("postgresql+asyncpg://")
            and "@postgres-primary:" in env["CGT_DATABASE_URL"]
        )
        assert env["CGT_AMQP_URL"].startswith("amqp://") and "@haproxy:5672" in env["CGT_AMQP_URL"]
    assert SERVICES["relay"]["command"] == ["cgt-gateway", "relay"]
    assert all(SERVICES[g]["environment"]["CGT_RELAY"] == "separate" for g in gateways)


def test_haproxy_balances_every_gateway_on_the_ports_it_listens_on_and_every_broker_node() -> None:
    gateways = sorted(n for n in SERVICES if n.startswith("gateway-"))
    env = SERVICES["gateway-1"]["environment"]
    http, mllp = int(env["CGT_HTTP_PORT"]), int(env["CGT_MLLP_PORT"])
    assert sorted((h, p) for _, h, p in _backend("gateways_http")) == [(g, http) for g in gateways]
    assert sorted((h, p) for _, h, p in _backend("gateways_mllp")) == [(g, mllp) for g in gateways]
    nodes = sorted(n for n in SERVICES if n.startswith("rabbitmq-"))
    assert sorted((h, p) for _, h, p in _backend("rabbitmq")) == [(n, 5672) for n in nodes]
    assert "option httpchk GET /health" in HAPROXY
    idle = Settings.model_fields["mllp_idle_seconds"].default
    assert int(re.search(r"timeout client (\d+)s", HAPROXY).group(1)) > idle  # type: ignore[union-attr]


def test_rabbitmq_nodes_know_each_other_and_queues_are_quorum_queues() -> None:
    conf = (CLUSTER / "rabbitmq.conf").read_text()
    listed = sorted(re.findall(r"nodes\.\d+ = rabbit@(\S+)", conf))
    assert listed == sorted(SERVICES[n]["hostname"] for n in SERVICES if n.startswith("rabbitmq-"))
    assert "default_queue_type = quorum" in conf
    cookies = {
        SERVICES[n]["environment"]["RABBITMQ_ERLANG_COOKIE"] for n in SERVICES if n.startswith("rabbitmq-")
    }
    assert len(cookies) == 1  # one cluster


def test_the_standby_streams_from_the_slot_the_primary_creates() -> None:
    slot = re.search(
        r"pg_create_physical_replication_slot\('(\w+)'\)", (CLUSTER / "primary-init.sh").read_text()
    )
    standby = (CLUSTER / "standby.sh").read_text()
    assert slot and f"-S {slot.group(1)}" in standby and "-R" in standby
    assert "wal_level=replica" in SERVICES["postgres-primary"]["command"]
    assert "replicator" in standby and SERVICES["postgres-standby"]["depends_on"]["postgres-primary"]


def test_the_simulator_service_runs_a_command_the_simulator_accepts() -> None:
    command = SERVICES["simulator"]["command"]
    assert command[:2] == ["cgt-gateway", "simulate"]
    known = {opt for p in typer.main.get_command(simulate_app).params for opt in p.opts}
    flags = [a for a in command[2:] if a.startswith("--")]
    assert flags and set(flags) <= known
    assert "http://haproxy:8080" in command and "haproxy:2575" in command
