"""A pip-installed safety-filter finds its policy, rule lists and model with no checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # real servers or real models

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_its_data_and_works_outside_the_checkout(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("safety_filter-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "safety_filter/data/policy.yaml" in names
    assert "safety_filter/data/model/model.onnx" in names
    assert any(n.startswith("safety_filter/data/blocklists/en/") for n in names)
    assert any(n.startswith("safety_filter/data/blocklists/fr/") for n in names)
    assert not any(n.startswith(("tests/", "classifiers/", "benchmarks/")) for n in names)

    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    texts = json.loads((ROOT / "tests" / "fixtures" / "e2e_texts.json").read_text(encoding="utf-8"))
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}
    code = (
        "import safety_filter, sys; print(safety_filter.__file__); "
        "from safety_filter.cli import main; sys.exit(main(['scan', sys.argv[1]]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, texts["extremist_fr"]],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    location, verdict = result.stdout.splitlines()[0], json.loads(result.stdout.splitlines()[1])
    assert location.startswith(str(target))
    assert verdict["action"] == "block"
    sources = {f["source"] for f in verdict["findings"]}
    assert "rules" in sources and "classifier" in sources
