"""The FHIR corpus: synthetic requests in the shapes of the official R4 examples, replayed through
the running app in file order; each is taken, ignored or refused as tests/fixtures/fhir/corpus/
outcomes.yaml says. The table of what happened is printed by outcome (`pytest -s` shows it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from gateway import metrics
from gateway.entrypoints.bootstrap import Gateway
from gateway.store import tables as t
from tests.integration.test_fhir_support import FHIR_JSON, FIXTURES, KEY, running, settings, valid_fhir

CORPUS = FIXTURES / "corpus"
TABLE: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "outcomes.yaml").read_text(encoding="utf-8"))


@pytest.fixture
async def app(tmp_path: Path, amqp_url: str) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async with running(settings(tmp_path, amqp_url)) as pair:
        yield pair


async def stored(gateway: Gateway) -> int:
    async with gateway.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(t.inbound_messages))).scalar_one())


def outcome_of(response: httpx.Response, kept: bool) -> str:
    if response.status_code >= 400:
        return "refused"
    if response.status_code == 202:
        return "held"
    return "taken" if kept else "ignored"


def test_the_table_names_every_file_of_the_corpus() -> None:
    assert sorted(TABLE) == sorted(p.name for p in CORPUS.glob("*.json"))
    assert {row["outcome"] for row in TABLE.values()} == {"taken", "ignored", "refused"}


async def test_the_corpus_replays_to_its_table_of_outcomes(app: tuple[Gateway, httpx.AsyncClient]) -> None:
    gateway, http = app
    seen: dict[str, list[str]] = {}
    wrong: list[str] = []
    for name, row in TABLE.items():
        method, path = row["request"].split(" ", 1)
        reason = row.get("reason", "")
        before_ignored = metrics.IGNORED.labels("demo-hospital", "fhir-r4", reason)._value.get()
        before = await stored(gateway)
        response = await http.request(method, path, content=(CORPUS / name).read_bytes(), headers=KEY)
        got = outcome_of(response, await stored(gateway) > before)
        assert response.headers["content-type"] == FHIR_JSON
        answer = valid_fhir(response.json())
        seen.setdefault(got, []).append(f"{response.status_code} {name}")
        if (got, response.status_code) != (row["outcome"], row["status"]):
            wrong.append(f"{name}: {got} {response.status_code}, expected {row['outcome']} {row['status']}")
            continue
        if got == "ignored":
            (issue,) = answer["issue"]
            assert issue["severity"] == "information" and issue["diagnostics"] == reason, name
            after = metrics.IGNORED.labels("demo-hospital", "fhir-r4", reason)._value.get()
            assert after == before_ignored + 1, name
        if got == "refused":
            assert answer["issue"][0]["expression"] == [row["where"]], name
        assert "Unknownpatient" not in response.text and "Corpuspatient" not in response.text
    print("\nFHIR corpus, by outcome:")
    for outcome in sorted(seen):
        print(f"  {outcome} ({len(seen[outcome])})")
        for line in seen[outcome]:
            print(f"    {line}")
    assert not wrong, "\n".join(wrong)
    async with gateway.engine.connect() as conn:
        orders = (await conn.execute(select(func.count()).select_from(t.orders))).scalar_one()
        held = (await conn.execute(select(func.count()).select_from(t.quarantine))).scalar_one()
    assert (orders, held) == (3, 0)  # the three therapy orders; nothing left for two operators
