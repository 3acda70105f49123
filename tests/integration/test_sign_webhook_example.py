"""The README's signing script (docs/examples/sign_webhook.py), run as an integrator runs it: its
headers reproduce the published Standard Webhooks and EasyPost test vectors (read from the
samples folder at test time), and a real gateway takes the README's example request signed by it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.settings import ROOT, Settings
from tests.integration.test_courier_loggers import DEMO_COURIER_SECRET, declared_shipment, partner_file
from tests.support.served import served
from tests.unit.test_courier_loggers import samples_dir

SCRIPT = ROOT / "docs" / "examples" / "sign_webhook.py"
EXAMPLE = ROOT / "docs" / "examples" / "telemetry-batch.json"


def headers_from(*args: str) -> dict[str, str]:
    """Run the script; its output is one `Name: value` a line."""
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=True)
    return dict(line.split(": ", 1) for line in done.stdout.splitlines())


def test_the_script_signs_the_published_vectors(tmp_path: Path) -> None:
    vectors = json.loads(
        (samples_dir().parent / "webhooks" / "signature-test-vectors.DERIVED.json").read_text()
    )
    sw = vectors["standard_webhooks_v1_hmac_sha256"]
    body = tmp_path / "sw.json"
    body.write_bytes(sw["body"].encode())
    found = headers_from(
        body.as_posix(),
        "--secret",
        sw["secret"],
        "--id",
        sw["webhook-id"],
        "--timestamp",
        sw["webhook-timestamp"],
    )
    assert found["webhook-signature"] == sw["webhook-signature"]
    ep = vectors["easypost_x_hmac_signature"]
    body = tmp_path / "ep.json"
    body.write_bytes((samples_dir().parent / "webhooks" / ep["body_file"]).read_bytes().removesuffix(b"\n"))
    found = headers_from(body.as_posix(), "--scheme", "easypost", "--secret", ep["secret"])
    assert found[ep["header"]] == ep["expected"]


@pytest.fixture
def settings(tmp_path: Path, amqp_url: str) -> Settings:
    return Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,tive-telemetry",
        partners_file=partner_file(tmp_path),
    )


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with served(settings) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client


async def test_the_readme_example_request_is_taken(http: httpx.AsyncClient) -> None:
    order_coi = await declared_shipment(http)  # the example's logger and tracking number
    headers = headers_from(EXAMPLE.as_posix(), "--secret", DEMO_COURIER_SECRET, "--id", "msg_0001")
    answer = await http.post(
        "/couriers/demo-courier/telemetry", content=EXAMPLE.read_bytes(), headers=headers
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "applied" and answer.json()["coi"] == order_coi
