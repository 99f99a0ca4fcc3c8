"""Triage policy data files (``<region>.yaml``) and their loader.

The rules live in :mod:`eropaf_matching.domain.triage`; this package only reads the file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from eropaf_contracts.region import Region, load_region
from eropaf_matching.domain.triage import PolicyError, RegionPolicy, parse_policy

__all__ = ["PolicyError", "load_policy"]


def load_policy(path: str | Path | None = None, *, region: Region | None = None) -> RegionPolicy:
    """Load and validate a policy file against its region (default: packaged Lekstroom)."""
    region = region or load_region()
    if path is None:
        text = files(__package__).joinpath("lekstroom.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PolicyError([f"(file): not valid YAML: {error}"]) from None
    return parse_policy(data, region=region.name, gemeenten={m.code for m in region.municipalities})
