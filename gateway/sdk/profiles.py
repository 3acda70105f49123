"""Profiles as data: a dialect's per-partner mapping profile, a pydantic model read from YAML
files under `mappings/<folder>/` (or the folder the settings name), all loaded and validated at
start-up, so that a bad profile refuses to start naming the file and the field."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gateway.errors import ConfigError
from gateway.partners import Partner
from gateway.settings import Settings

P = TypeVar("P", bound=BaseModel)


class Profiles(Generic[P]):
    """Every profile of one dialect, by name (a partner's `profile`, else its id).

    Files named `*_test.yaml` (a profile's cases) and those in `skip` (other tables kept beside
    the profiles) are not profiles. `partner_of` names the partner a profile says it is for,
    when the model says so: it must then be the partner whose name the file has."""

    def __init__(
        self,
        model: type[P],
        folder: str,
        *,
        dialect: str,
        skip: Iterable[str] = (),
        partner_of: Callable[[P], str] | None = None,
    ) -> None:
        self.model, self.folder, self.dialect = model, folder, dialect
        self.skip = frozenset(skip)
        self.partner_of = partner_of
        self._by_name: dict[str, P] = {}
        self.directory: Path | None = None

    def directory_for(self, settings: Settings) -> Path:
        return settings.profile_dirs.get(self.folder) or settings.mappings_dir / self.folder

    def load(self, settings: Settings) -> None:
        """Read and validate every profile in the folder (at start-up)."""
        directory = self.directory_for(settings)
        loaded: dict[str, P] = {}
        for path in sorted(directory.glob("*.yaml")):
            if path.stem.endswith("_test") or path.stem in self.skip:
                continue
            loaded[path.stem] = self.read(path)
        self._by_name, self.directory = loaded, directory

    def read(self, path: Path) -> P:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
            return self.model.model_validate(document)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top)"
            raise ConfigError(f"{self.dialect} profile {path}: {where}: {first['msg']}") from exc
        except (OSError, yaml.YAMLError, ValueError) as exc:
            raise ConfigError(f"{self.dialect} profile {path}: {exc}") from exc

    def for_partner(self, partner: Partner) -> P | None:
        """The partner's profile, or None when it has none for this dialect."""
        profile = self._by_name.get(partner.profile or partner.id)
        if profile is not None and self.partner_of is not None and self.partner_of(profile) != partner.id:
            raise ConfigError(f"{self.dialect} profile {partner.profile or partner.id} is not {partner.id}'s")
        return profile

    def all(self) -> list[P]:
        return list(self._by_name.values())

    def by_name(self) -> dict[str, P]:
        """Every profile by its file's name (without `.yaml`): for checks that name the file."""
        return dict(self._by_name)
