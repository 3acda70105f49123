"""An adapter's examples from its folder: a file is a malformed example when its name says so."""

from __future__ import annotations

from pathlib import Path

from gateway.adapter_contract import Example


def examples_in(folder: Path, pattern: str = "*") -> list[Example]:
    """Every file in `folder` matching `pattern`, by name; `malformed` in a name marks one that
    must be refused, any other is valid."""
    return [
        Example(path.stem, path.read_bytes(), "malformed" if "malformed" in path.stem else "valid")
        for path in sorted(folder.glob(pattern))
    ]
