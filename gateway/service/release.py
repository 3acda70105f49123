"""QC-gated release: `manufacturing.released` is applied only when every QC test its product
requires has passed, and no blocking deviation is open (docs/mes-rules.md).

Which tests a product requires is data (`mappings/mes/release_tests.yaml`, or CGT_RELEASE_TESTS_FILE),
read and checked at start-up. A refusal (gateway.service.mes_rules.check_release) is ReleaseRefused
(409, AE): the sender is told which tests are missing, pending or failed, and the message is kept
and audited as rejected.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.canonical.order import Product, QcOutcome, TherapyOrder, qc_test_name
from gateway.errors import ConfigError


def _test_names(names: tuple[str, ...]) -> tuple[str, ...]:
    spelled = tuple(qc_test_name(n) for n in names)
    if len(set(spelled)) != len(spelled) or not all(spelled):
        raise ValueError("each test once, by a name")
    return spelled


class _Product(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    tests: tuple[str, ...] = Field(min_length=1)

    @field_validator("tests")
    @classmethod
    def _names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        return _test_names(names)


class _ReleaseFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    blocking_deviations: tuple[str, ...] = ("critical",)
    default: tuple[str, ...] | None = Field(default=None, min_length=1)
    products: tuple[_Product, ...] = ()

    @field_validator("default")
    @classmethod
    def _default_names(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _test_names(names) if names is not None else None


class ReleaseTests:
    """The QC tests each product must pass before release, and the deviation severities that block it."""

    def __init__(
        self,
        products: Iterable[tuple[str, str, tuple[str, ...]]] = (),
        *,
        default: tuple[str, ...] | None = None,
        blocking: Iterable[str] = ("critical",),
    ) -> None:
        self._by_product = {(system, code): tests for system, code, tests in products}
        self.default = default
        self.blocking = frozenset(s.lower() for s in blocking)

    def required(self, product: Product) -> tuple[str, ...] | None:
        return self._by_product.get((product.system, product.code), self.default)


def load_release_tests(path: Path) -> ReleaseTests:
    try:
        parsed = _ReleaseFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"release tests {path}: {exc}") from exc
    keys = [(p.system, p.code) for p in parsed.products]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"release tests {path}: a product is listed twice")
    return ReleaseTests(
        ((p.system, p.code, p.tests) for p in parsed.products),
        default=parsed.default,
        blocking=parsed.blocking_deviations,
    )


def release_refusal(order: TherapyOrder, tests: ReleaseTests) -> str | None:
    """Why the order's product may not be released now (tests and deviation ids, no values), or None."""
    required = tests.required(order.product)
    if required is None:
        return f"no release tests are configured for product {order.product.code}"
    qc = order.manufacturing.qc
    reasons = []
    for outcome, label in ((None, "missing"), (QcOutcome.pending, "pending"), (QcOutcome.failed, "failed")):
        named = [t for t in required if qc.get(t) is outcome]
        if named:
            reasons.append(f"QC tests {label}: {', '.join(named)}")
    blocking = sorted(d for d, sev in order.manufacturing.open_deviations.items() if sev in tests.blocking)
    if blocking:
        reasons.append(f"blocking deviations open: {', '.join(blocking)}")
    return "release refused: " + "; ".join(reasons) if reasons else None
