"""The engine: batching across concurrent checks, caching, fail modes, hot reload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from safety_filter import Engine
from safety_filter.detectors.base import BaseDetector, Detector
from safety_filter.findings import Action, Finding
from safety_filter.policy import load_policy

from .helpers import FakeDetector, make_policy


def test_check_sync_scores_and_caches() -> None:
    detector = FakeDetector()
    engine = Engine(make_policy(), [detector])
    first = engine.check_sync(["hello", "zzhate here", "hello"], "prompt")
    assert [v.action for v in first] == [Action.ALLOW, Action.BLOCK, Action.ALLOW]
    assert detector.calls == [["hello", "zzhate here"]]  # duplicates scored once
    engine.check_sync(["zzhate here"], "completion")
    assert len(detector.calls) == 1  # served from the cache
    assert detector.loaded == 1


@pytest.mark.anyio
async def test_concurrent_checks_are_batched_in_one_worker() -> None:
    detector = FakeDetector()
    engine = Engine(make_policy(), [detector])
    await engine.aload()
    # Occupy the worker, then queue ten more checks: they must be scored together.
    slow = asyncio.create_task(engine.check(["zzslow"], "prompt"))
    await asyncio.sleep(0.1)
    rest = await asyncio.gather(*(engine.check([f"text {i}"], "prompt") for i in range(10)))
    await slow
    assert all(v[0].action is Action.ALLOW for v in rest)
    assert len(detector.calls) == 2
    assert sorted(detector.calls[1]) == sorted(f"text {i}" for i in range(10))
    engine.close()


@pytest.mark.anyio
async def test_timeout_follows_fail_mode() -> None:
    engine = Engine(make_policy(detectors={"timeout_seconds": 0.05}), [FakeDetector()])
    verdict = (await engine.check(["zzslow"], "prompt"))[0]
    assert verdict.action is Action.BLOCK and "timed out" in (verdict.error or "")
    open_engine = Engine(make_policy(fail_mode="open", detectors={"timeout_seconds": 0.05}), [FakeDetector()])
    verdict = (await open_engine.check(["zzslow"], "prompt"))[0]
    assert verdict.action is Action.ANNOTATE and verdict.error
    engine.close()
    open_engine.close()


class SlowToWarm(FakeDetector):
    """Start-up work (presidio's, say) longer than the detection timeout, done on first use if not before."""

    warmed = False

    def warm_up(self) -> None:
        time.sleep(0.3)
        self.warmed = True

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]:
        if not self.warmed:
            self.warm_up()
        return super().detect(texts)


@pytest.mark.anyio
async def test_a_first_check_without_warm_up_is_not_timed_out_by_start_up_work() -> None:
    detector = SlowToWarm()
    engine = Engine(make_policy(detectors={"timeout_seconds": 0.1}), [detector])
    verdicts = await asyncio.gather(engine.check(["zzhate here"], "prompt"), engine.check(["hello"], "prompt"))
    assert [v[0].action for v in verdicts] == [Action.BLOCK, Action.ALLOW]
    assert all(v[0].error is None for v in verdicts)  # the detector's verdicts, not the timeout's
    assert detector.warmed and detector.loaded == 1
    engine.close()


@pytest.mark.anyio
async def test_a_failing_text_does_not_fail_its_batch_neighbours() -> None:
    detector = FakeDetector()
    engine = Engine(make_policy(), [detector])
    await engine.aload()
    slow = asyncio.create_task(engine.check(["zzslow"], "prompt"))
    await asyncio.sleep(0.1)
    good, bad = await asyncio.gather(engine.check(["fine"], "prompt"), engine.check(["zzboom"], "prompt"))
    await slow
    assert good[0].action is Action.ALLOW and good[0].error is None
    assert bad[0].action is Action.BLOCK and bad[0].error
    engine.close()


def policy_text(sexual_prompt: dict[str, object], **top: object) -> str:
    """The shipped policy as YAML, with the sexual/prompt rule and some top-level keys replaced."""
    import yaml

    from safety_filter.resources import default_policy_path

    data = yaml.safe_load(default_policy_path().read_text())
    data["categories"]["sexual"]["prompt"] = sexual_prompt
    data.update(top)
    return yaml.safe_dump(data)


def test_policy_file_change_is_reloaded_and_a_bad_one_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text({"threshold": 0.6, "action": "annotate"}))
    engine = Engine(load_policy(path), [FakeDetector()], policy_path=path)
    assert engine.check_sync(["zzsex"], "prompt")[0].action is Action.ANNOTATE
    path.write_text(policy_text({"threshold": 0.6, "action": "block"}))
    assert engine.reload()
    assert engine.check_sync(["zzsex"], "prompt")[0].action is Action.BLOCK
    path.write_text("fail_mode: [broken")
    assert not engine.reload()
    assert engine.check_sync(["zzsex"], "prompt")[0].action is Action.BLOCK  # last good policy stays


def test_a_policy_rewritten_while_it_is_read_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An editor truncates, then writes: a reload that read the empty file must not take the
    finished file's stamp as already seen."""
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text({"threshold": 0.6, "action": "annotate"}))
    engine = Engine(load_policy(path), [FakeDetector()], policy_path=path)
    path.write_text("")
    read = engine._read_policy

    def read_while_the_writer_finishes() -> Any:
        try:
            return read()
        finally:
            path.write_text(policy_text({"threshold": 0.6, "action": "block"}))

    monkeypatch.setattr(engine, "_read_policy", read_while_the_writer_finishes)
    assert not engine.reload()  # it read the empty file
    monkeypatch.undo()
    assert engine.changed()
    assert engine.reload()
    assert engine.check_sync(["zzsex"], "prompt")[0].action is Action.BLOCK


@pytest.mark.anyio
async def test_watched_policy_reloads_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text({"threshold": 0.6, "action": "annotate"}, reload_interval_seconds=0.01))
    engine = Engine(load_policy(path), [FakeDetector()], policy_path=path)
    assert (await engine.check(["zzsex"], "prompt"))[0].action is Action.ANNOTATE
    time.sleep(0.02)
    path.write_text(policy_text({"threshold": 0.6, "action": "off"}, reload_interval_seconds=0.01))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (await engine.check(["zzsex"], "prompt"))[0].action is Action.ALLOW:
            break
        await asyncio.sleep(0.05)
    assert (await engine.check(["zzsex"], "prompt"))[0].action is Action.ALLOW
    engine.close()


class FileBacked(BaseDetector):
    """A BaseDetector: its version is the content of one watched file."""

    name = "file-backed"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warmed = 0

    def load(self) -> None:
        self.version = "v" + self.path.read_text()

    def warm_up(self) -> None:
        self.warmed += 1

    def watched_paths(self) -> list[Path]:
        return [self.path]

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]:
        return [[] for _ in texts]


class Plain(FakeDetector):
    """The bare Detector protocol, with optional members of its own and no base class."""

    name = "plain"
    version = "p1"
    warmed = False

    def warm_up(self) -> None:
        self.warmed = True


def test_optional_detector_members_from_the_base_class_or_a_plain_object(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("1")
    file_backed, plain, bare = FileBacked(path), Plain(), FakeDetector()
    assert isinstance(file_backed, Detector) and BaseDetector().watched_paths() == []
    engine = Engine(make_policy(), [file_backed, plain, bare])
    engine.warm_up()
    assert file_backed.warmed == 1 and plain.warmed
    assert engine.versions() == {"file-backed": "v1", "plain": "p1", "fake": ""}
    assert not engine.changed()
    path.write_text("22")
    assert engine.changed()
    assert engine.reload()
    assert engine.versions()["file-backed"] == "v22"
