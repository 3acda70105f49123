"""HL7 v2 adapters and profiles for tests: loaded from the settings, as the gateway loads them."""

from __future__ import annotations

from pathlib import Path

from adapters.hl7v2.adapter import Hl7v2
from adapters.hl7v2.profile import FOLDER, SiteProfile, site_profiles
from gateway.canonical.command import Command
from gateway.partners import load_partners
from gateway.sdk import Decoded
from gateway.settings import Settings

SHIPPED = Settings().mappings_dir / FOLDER  # the profiles in mappings/hl7v2


def load_profile(name: str = "demo-hospital", directory: Path = SHIPPED) -> SiteProfile:
    """One profile file, read and validated as at start-up (ConfigError when it is wrong)."""
    return site_profiles().read(directory / f"{name}.yaml")


def configured(profiles: Path | None = None, **options: object) -> Hl7v2:
    """An adapter whose profiles are loaded, from `profiles` or the shipped folder."""
    settings = Settings(profile_dirs={FOLDER: profiles} if profiles else {})
    adapter = Hl7v2(**options)  # type: ignore[arg-type]
    adapter.configure(settings, load_partners(settings.partners_file, env="test"))
    return adapter


def commands_of(decoded: Decoded) -> list[Command]:
    """The commands, or the error that kept the message from mapping, raised."""
    if decoded.error is not None:
        raise decoded.error
    return list(decoded.commands)
