"""Every site profile in mappings/hl7v2 runs its own cases (`<profile>_test.yaml` beside it), and a
profile that is wrong is refused when it is loaded, with a message that says why."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.hl7v2.adapter import adapter as shipped
from gateway.canonical.envelope import utcnow
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.errors import ConfigError, GatewayError
from gateway.partners import load_partners
from gateway.registry import InboundContext
from gateway.settings import Settings
from tests.support.hl7 import SHIPPED as PROFILES
from tests.support.hl7 import commands_of, configured, load_profile

PARTNERS = load_partners(Settings().partners_file, env="test")


def cases() -> list[Any]:
    out = []
    for path in sorted(PROFILES.glob("*_test.yaml")):
        profile = path.name.removesuffix("_test.yaml")
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]:
            out.append(pytest.param(profile, case, id=f"{profile}: {case['name'][:60]}"))
    return out


def contains(actual: Any, expected: Any) -> bool:
    """Every key the case names is there with the value it names (lists: item by item)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list) and len(actual) == len(expected) and all(map(contains, actual, expected))
        )
    return bool(actual == expected)


@pytest.mark.parametrize(("profile", "case"), cases())
def test_profile_case(profile: str, case: dict[str, Any]) -> None:
    adapter = configured(PROFILES)
    partner = PARTNERS.get(load_profile(profile).partner)
    ctx = InboundContext(partner, "test", utcnow())
    raw = "\r".join(case["message"].strip().splitlines()).encode("utf-8")
    if "error" in case:
        with pytest.raises(GatewayError) as caught:
            commands_of(adapter.decode(raw, ctx))
        found = {"error": type(caught.value).__name__, **vars(caught.value)}
        assert contains(found, case["error"]), found
        return
    commands = [c.model_dump(mode="json") for c in commands_of(adapter.decode(raw, ctx))]
    assert contains(commands, case["expect"]), commands


def test_every_profile_has_cases() -> None:
    profiles = {p.stem for p in PROFILES.glob("*.yaml") if not p.stem.endswith("_test")}
    tested = {p.name.removesuffix("_test.yaml") for p in PROFILES.glob("*_test.yaml")}
    assert profiles and profiles == tested


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (
            {"mrn": {"identifier_types": ["MR"], "namespace": "site:other-site:mrn"}},
            "must start with site:demo-hospital:",
        ),
        (
            {"mrn": {"identifier_types": ["MR"], "namespace": "site:demo-hospital:patient-number"}},
            "must end in ':mrn'",
        ),
        (
            {
                "orders": {
                    "placer_namespace": "site:demo-hospital:placer-order",
                    "order_control": {"NW": "order.placed"},
                    "product": ["OBR 4"],
                }
            },
            "not an HL7 field path",
        ),
        (
            {
                "orders": {
                    "placer_namespace": "site:demo-hospital:placer-order",
                    "order_control": {"NW": "order.shipped"},
                }
            },
            "order_control",
        ),
        (
            {
                "orders": {
                    "placer_namespace": "site:demo-hospital:placer-order",
                    "order_control": {"NW": "order.placed"},
                    "product_systems": {"ISBT128": "ISBT-128"},
                }
            },
            "product systems are 'isbt128' or 'local:<site>'",
        ),
        (
            {
                "orders": {
                    "placer_namespace": "site:demo-hospital:placer-order",
                    "order_control": {"NW": "order.placed"},
                    "therapy_products": ["CART-1"],
                }
            },
            "therapy_products need local_product_system",
        ),
        ({"versions": ["2.5.1", "2.1"]}, "versions the mappings cannot read"),
        ({"limits": {"repetitions": 1}}, "repetitions"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"default_charset": "EBCDIC"}, "unknown character set"),
        (
            {"outbound": {"host": "ehr", "port": 6661, "events": ["collection.completed"]}},
            "without a status code",
        ),
    ],
)
def test_a_wrong_profile_is_refused_at_load(tmp_path: Path, change: dict[str, Any], complaint: str) -> None:
    document = yaml.safe_load((PROFILES / "demo-hospital.yaml").read_text(encoding="utf-8"))
    document.update(change)
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(ConfigError, match=complaint):
        load_profile("broken", tmp_path)


def test_a_profile_may_turn_on_strict_validation_with_hl7apy(tmp_path: Path) -> None:
    document = yaml.safe_load((PROFILES / "demo-hospital.yaml").read_text(encoding="utf-8"))
    document["strict_validation"] = True
    (tmp_path / "demo-hospital.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    strict, lenient = configured(tmp_path), configured(PROFILES)
    ctx = InboundContext(PARTNERS.get("demo-hospital"), "test", utcnow())
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2"
    # the fixtures that conform strictly; most real-world-shaped ones do not, which is why it is opt-in
    for name in ("oml_o21_new_order", "omb_o27_new_order", "orm_o01_hold", "adt_a01_admit", "adt_a40_merge"):
        raw = (fixtures / f"{name}.hl7").read_bytes()
        assert commands_of(strict.decode(raw, ctx)) == commands_of(lenient.decode(raw, ctx))
    # a data type error the fast path does not look at (OBR-1 is a sequence number, SI)
    bad = (fixtures / "oml_o21_new_order.hl7").read_bytes().replace(b"OBR|1|", b"OBR|one|")
    commands_of(lenient.decode(bad, ctx))
    with pytest.raises(GatewayError) as caught:
        commands_of(strict.decode(bad, ctx))
    assert type(caught.value).__name__ == "MalformedMessage" and caught.value.code == "102"
    # a segment that does not belong in the message's structure
    misplaced = (fixtures / "adt_a01_admit.hl7").read_bytes().replace(b"EVN|", b"XYZ|", 1)
    with pytest.raises(GatewayError, match="strict validation"):
        commands_of(strict.decode(misplaced, ctx))


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """bootstrap() as `cgt-gateway serve` runs it, on the settings given; the shipped hl7v2 adapter
    (configured by it) is given back its shipped profiles afterwards."""

    def start(**settings: Any) -> Gateway:
        return bootstrap(
            Settings(
                env="test",
                database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
                adapters="canonical-json,hl7v2",
                **settings,
            )
        )

    yield start
    shipped.configure(Settings(), PARTNERS)


def _profile_dir(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "demo-hospital.yaml").write_text(text, encoding="utf-8")
    return directory


def test_a_wrong_profile_refuses_to_start_naming_the_file_and_the_field(
    tmp_path: Path, start_up: Callable[..., Gateway]
) -> None:
    document = yaml.safe_load((PROFILES / "demo-hospital.yaml").read_text(encoding="utf-8"))
    document["limits"] = {"repetitions": 1}
    folder = _profile_dir(tmp_path / "hl7", yaml.safe_dump(document))
    where = re.escape(f"{folder / 'demo-hospital.yaml'}: limits.repetitions")
    with pytest.raises(ConfigError, match=where):
        start_up(profile_dirs={"hl7v2": folder})


def test_a_site_on_mllp_without_a_profile_of_its_own_refuses_to_start(
    tmp_path: Path, start_up: Callable[..., Gateway]
) -> None:
    with pytest.raises(ConfigError, match="demo-hospital sends HL7 v2 over MLLP but has no profile"):
        start_up(profile_dirs={"hl7v2": tmp_path})  # a folder with no profile in it
    someone_else = (PROFILES / "demo-hospital.yaml").read_text(encoding="utf-8")
    folder = _profile_dir(tmp_path / "other", someone_else.replace("demo-hospital", "other-hospital"))
    with pytest.raises(ConfigError, match="profile demo-hospital is not demo-hospital's"):
        start_up(profile_dirs={"hl7v2": folder})


def test_profiles_come_from_the_settings_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_up: Callable[..., Gateway]
) -> None:
    document = yaml.safe_load((PROFILES / "demo-hospital.yaml").read_text(encoding="utf-8"))
    document["processing_ids"] = ["T"]  # this site sends test traffic only
    _profile_dir(tmp_path / "mappings" / "hl7v2", yaml.safe_dump(document))
    raw = (Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2" / "orm_o01_new_order.hl7").read_bytes()
    ctx = InboundContext(PARTNERS.get("demo-hospital"), "test", utcnow())

    monkeypatch.setenv("CGT_MAPPINGS_DIR", str(tmp_path / "mappings"))
    gw = start_up()
    assert gw.adapters["hl7v2"] is shipped and shipped.profiles.directory == tmp_path / "mappings" / "hl7v2"
    refused = shipped.decode(raw, ctx).error
    assert isinstance(refused, GatewayError) and getattr(refused, "code", None) == "202"

    monkeypatch.setenv("CGT_PROFILE_DIRS", json.dumps({"hl7v2": str(PROFILES)}))  # the one folder moved
    start_up()
    assert shipped.profiles.directory == PROFILES and commands_of(shipped.decode(raw, ctx))
