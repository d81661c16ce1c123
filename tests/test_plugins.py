"""Plugin detectors: installed through the `safety_filter.detectors` entry-point group, each with
its own section under `detectors:` in the policy; a misspelt built-in name still fails loudly.

The plugin here is really installed: a dist-info folder with an entry point, on `sys.path`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from safety_filter import Engine, PolicyError, load_policy
from safety_filter.findings import Action

from .test_engine import policy_text

PLUGIN = '''
from safety_filter.findings import Finding


class MarkerDetector:
    name = "zzplug"

    def __init__(self, marker):
        self.marker = marker

    def load(self):
        pass

    def detect(self, texts):
        return [[Finding("hate", 1.0, self.name, (t.find(self.marker), t.find(self.marker) + len(self.marker)),
                         "zzplug:" + self.marker)] if self.marker in t else [] for t in texts]


def factory(policy):
    return MarkerDetector(policy.detectors.plugin("zzplug").model_extra["marker"])
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the `zzplug` detector for this test only."""
    site = tmp_path / "site"
    (site / "zzplug-0.1.dist-info").mkdir(parents=True)
    (site / "zzplug-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: zzplug\nVersion: 0.1\n")
    (site / "zzplug-0.1.dist-info" / "entry_points.txt").write_text(
        "[safety_filter.detectors]\nzzplug = zzplug_detector:factory\n"
    )
    (site / "zzplug_detector.py").write_text(PLUGIN)
    monkeypatch.delitem(sys.modules, "zzplug_detector", raising=False)
    monkeypatch.syspath_prepend(str(site))


def write_policy(path: Path, **sections: object) -> Path:
    """The shipped policy with the built-in detectors off and `sections` added under `detectors:`."""
    data = yaml.safe_load(policy_text({"threshold": 0.5, "action": "block"}))
    for name in ("rules", "classifier", "ncii"):
        data["detectors"][name]["enabled"] = False
    data["detectors"].update(sections)
    path.write_text(yaml.safe_dump(data))
    return path


def actions(engine: Engine, *texts: str) -> list[Action]:
    return [verdict.action for verdict in engine.check_sync(list(texts), "prompt")]


@pytest.mark.usefixtures("plugin")
def test_a_plugin_gets_its_own_section_and_follows_its_edits(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "policy.yaml", zzplug={"marker": "zzwidget"})
    engine = Engine.from_policy_file(path)
    assert [d.name for d in engine.load().detectors] == ["zzplug"]
    assert actions(engine, "a zzwidget here", "a zzgadget here") == [Action.BLOCK, Action.ALLOW]
    write_policy(path, zzplug={"marker": "zzgadget"})
    assert engine.reload()
    assert actions(engine, "a zzwidget here", "a zzgadget here") == [Action.ALLOW, Action.BLOCK]
    engine.close()


@pytest.mark.usefixtures("plugin")
def test_a_plugin_section_can_turn_it_off(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "policy.yaml", zzplug={"enabled": False, "marker": "zzwidget"})
    engine = Engine.from_policy_file(path)
    assert engine.load().detectors == []
    engine.close()


@pytest.mark.usefixtures("plugin")
def test_a_misspelt_builtin_still_fails_with_its_name(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "policy.yaml", rulez={"enabled": True})
    with pytest.raises(PolicyError, match=r"detectors: rulez: unknown key .*plugin detectors installed: zzplug"):
        load_policy(path)
    write_policy(path, timeout_secs=3)  # a misspelt scalar setting too
    with pytest.raises(PolicyError, match=r"detectors: timeout_secs: unknown key"):
        load_policy(path)


def test_a_section_for_a_plugin_that_is_not_installed_fails(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "policy.yaml", zzplug={"marker": "zzwidget"})
    with pytest.raises(PolicyError, match=r"detectors: zzplug: unknown key"):
        load_policy(path)
