"""Every FHIR site profile loads, and passes the cases in its `<profile>_test.yaml`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from adapters.fhir.adapter import adapter
from adapters.fhir.message import Interaction
from adapters.fhir.profile import PROFILES_DIR, all_profiles, load_profile, load_profiles
from adapters.fhir.task import status_map
from gateway.canonical.envelope import utcnow
from gateway.canonical.ids import ExternalRef
from gateway.canonical.lifecycle import OrderStatus
from gateway.errors import NotOurs, RejectedMessage
from gateway.partners import load_partners
from gateway.registry import InboundContext
from gateway.sdk import Decoded
from gateway.settings import Settings

PARTNERS = load_partners(Settings().partners_file, env="test")


def cases() -> list[Any]:
    out = []
    for path in sorted(PROFILES_DIR.glob("*_test.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in document["cases"]:
            out.append(pytest.param(document["profile"], case, id=f"{path.stem}:{case['name']}"))
    return out


def decode(raw: bytes, ctx: InboundContext) -> Decoded:
    """The adapter's reading, its error (what is read but not taken comes back in it) raised."""
    decoded = adapter.decode(raw, ctx)
    if decoded.error is not None:
        raise decoded.error
    return decoded


def contains(whole: Any, part: Any) -> bool:
    """`part` is a subset of `whole`: dicts by key, lists item by item, the rest equal."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and contains(whole[k], v) for k, v in part.items())
    if isinstance(part, list):
        return isinstance(whole, list) and len(whole) == len(part) and all(map(contains, whole, part))
    return bool(whole == part)


def test_every_profile_loads_and_has_its_cases() -> None:
    profiles = all_profiles()
    assert [p.partner for p in profiles] == ["demo-hospital"]
    for profile in profiles:
        assert (PROFILES_DIR / f"{profile.partner}_test.yaml").is_file()
        assert PARTNERS.get(profile.partner).kind.value == "site"


def test_every_order_status_has_a_task_status() -> None:
    statuses = status_map()
    assert set(statuses.statuses) == set(OrderStatus)
    allowed = {"requested", "in-progress", "on-hold", "completed", "cancelled", "failed"}
    assert {s.task for s in statuses.statuses.values()} <= allowed


@pytest.mark.parametrize(("profile", "case"), cases())
def test_profile_case(profile: str, case: dict[str, Any]) -> None:
    load_profile(profile)
    spec = dict(case["interaction"])
    known = spec.pop("known_orders", [])
    interaction = Interaction(
        **spec,
        known_orders={
            ExternalRef(**{k: v for k, v in o.items() if k != "status"}): OrderStatus(o["status"])
            for o in known
        },
        accepted=(spec.get("resource_type") or "Bundle",),
    )
    ctx = InboundContext(PARTNERS.get(profile), "test", utcnow(), interaction)
    raw = orjson.dumps(case["input"])
    if "ignored" in case:
        with pytest.raises(NotOurs) as passed:
            decode(raw, ctx)
        assert passed.value.reason == case["ignored"]["reason"]
        return
    if "error" in case:
        with pytest.raises(RejectedMessage) as caught:
            decode(raw, ctx)
        assert type(caught.value).__name__ == case["error"]["type"]
        assert caught.value.location == case["error"]["location"]
        return
    parsed = decode(raw, ctx)
    got = [c.model_dump(mode="json") for c in parsed.commands]
    assert len(got) == len(case["expect"])
    for command, expected in zip(got, case["expect"], strict=True):
        assert contains(command, expected), f"{command} does not contain {expected}"


def test_a_profile_for_someone_else_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.fhir.profile import profile_for
    from gateway.errors import ConfigError

    (tmp_path / "demo-hospital.yaml").write_text(
        (PROFILES_DIR / "demo-hospital.yaml").read_text().replace("partner: demo-hospital", "partner: other")
    )
    monkeypatch.setenv("CGT_PROFILE_DIRS", orjson.dumps({"fhir": str(tmp_path)}).decode())
    try:
        with pytest.raises(ConfigError):  # at start-up, when the profiles are loaded
            load_profiles(Settings())
            profile_for(PARTNERS.get("demo-hospital"))
    finally:
        monkeypatch.delenv("CGT_PROFILE_DIRS")
        load_profiles(Settings())
