"""Synthetic identifiers of one journey, deterministic from the run's seed: nothing here is, or
looks like, a real patient (family names are `Sim` + a number; birth dates in 1950-1990)."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import date, timedelta

from gateway.canonical.ids import mod37_2_check, validate_coi, validate_din

FACILITY = "A9999"  # the ISBT 128 facility code of the examples: no real facility has it
_ALNUM = string.digits + string.ascii_uppercase


def gs1_check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit of `digits` (weights 3,1,3,... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


@dataclass(frozen=True)
class Identities:
    """Everything one journey is known by, at every boundary."""

    n: int
    coi: str
    din: str  # 13 characters, without the check character
    din_check: str
    mrn: str
    placer: str
    family_name: str
    given_name: str
    birth_date: date
    sex: str
    inbound_tracking: str
    outbound_tracking: str
    inbound_logger: str
    outbound_logger: str
    outbound_sscc: str
    batch: str

    @property
    def din_scanned(self) -> str:
        """The DIN as a scanner reads it off the bag: with its MOD 37-2 check character."""
        return self.din + self.din_check


def _base36(value: int, width: int) -> str:
    out = ""
    for _ in range(width):
        value, digit = divmod(value, 36)
        out = _ALNUM[digit] + out
    return out


def identities(n: int, rng: random.Random, run: int) -> Identities:
    """Journey `n` of run `run` (0-99): unique within the run and across runs of other numbers,
    so a second run against the same database binds nothing the first one bound."""
    if not 0 <= run < 100 or not 0 <= n < 1_000_000:
        raise ValueError("a run is 0-99 and has at most a million journeys")
    tag = f"{run:02d}{n:06d}"
    coi = validate_coi(f"CH{FACILITY}{run:02d}{_base36(n, 6)}")
    din = validate_din(f"{FACILITY}{run:02d}{n:06d}")  # the run stands where the year would
    sscc_body = f"00614141{run:02d}{n:07d}"  # extension 0, the GS1 example company prefix, serial
    return Identities(
        n=n,
        coi=coi,
        din=din,
        din_check=mod37_2_check(din),
        mrn=f"SIM{tag}",
        placer=f"SPO-{tag}",
        family_name=f"Sim{tag}",
        given_name=rng.choice(["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]),
        birth_date=date(1950, 1, 1) + timedelta(days=rng.randrange(0, 40 * 365)),
        sex=rng.choice("MF"),
        inbound_tracking=f"1ZSIM{tag}I",
        outbound_tracking=f"1ZSIM{tag}O",
        inbound_logger=f"LOG-{tag}-I",
        outbound_logger=f"LOG-{tag}-O",
        outbound_sscc=sscc_body + gs1_check_digit(sscc_body),
        batch=f"BATCH-{tag}",
    )
