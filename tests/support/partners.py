"""Partner files for tests: the demo partners plus a second site, to try one site against another."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from gateway.settings import Settings

OTHER_SITE = "other-hospital"
OTHER_SITE_KEY = "other-hospital-key"


def with_second_site(directory: Path) -> Path:
    """The demo partner file plus `other-hospital` (a site, API key `other-hospital-key`)."""
    document = yaml.safe_load(Settings().partners_file.read_text(encoding="utf-8"))
    document["partners"].append(
        {
            "id": OTHER_SITE,
            "kind": "site",
            "name": "Other Hospital",
            "adapter": "canonical-json",
            "demo": True,
            "auth": {"api_key_sha256": [hashlib.sha256(OTHER_SITE_KEY.encode()).hexdigest()]},
        }
    )
    path = directory / "partners.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path
