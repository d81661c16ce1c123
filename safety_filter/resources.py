"""Where the shipped data lives, in a wheel install and in a checkout alike.

A wheel carries the top-level `blocklists/` folder inside the package as
`safety_filter/data/blocklists` (see pyproject.toml); an editable install or a plain checkout
reads the folder at the repository root instead.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_PACKAGE_DATA = Path(str(resources.files("safety_filter"))) / "data"


def data_dir() -> Path:
    return _PACKAGE_DATA


def blocklists_dir() -> Path:
    packaged = _PACKAGE_DATA / "blocklists"
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE_DATA.parent.parent / "blocklists"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("the shipped blocklists are missing: reinstall safety-filter")


def default_policy_path() -> Path:
    return _PACKAGE_DATA / "policy.yaml"


def default_model_dir() -> Path:
    return _PACKAGE_DATA / "model"
