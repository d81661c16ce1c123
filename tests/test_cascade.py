"""The classifier cascade: a screen decides which windows the encoder reads.

The screens here are built by hand (the mechanism is under test, not a trained screen): one
that escalates every window must give exactly the encoder's findings, one that escalates none
gives no classifier finding, a screen that fails makes the text fail as the policy says, a
screen distilled from another encoder, or one that guarantees less than the policy acts on, is
not used, and a text a rule list hit is always read by the encoder (the list's second witness).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from safety_filter import Engine
from safety_filter.detectors import build_detectors
from safety_filter.detectors.classifier import ClassifierDetector, default_model_dir
from safety_filter.detectors.screen import StudentScreen
from safety_filter.findings import Finding, Witness
from safety_filter.policy import load_policy
from tests.helpers import make_policy

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures" / "obfuscation"
HARMFUL = [
    row["text"]
    for row in map(json.loads, (FIXTURES / "harmful.jsonl").read_text(encoding="utf-8").splitlines())
    if row["detector"] == "classifier"
]


def model_with_screen(folder: Path, *, threshold: float, teacher: str | None = None) -> Path:
    """The shipped model's files beside a screen whose every score is 0.5."""
    folder.mkdir()
    for name in ("model.onnx", "tokenizer.json", "config.json"):
        (folder / name).symlink_to(default_model_dir() / name)
    version = json.loads((default_model_dir() / "config.json").read_text())["version"]
    dim, hidden, labels, vocab, buckets = 4, 3, 4, 8, 16
    np.savez(
        folder / "screen.npz",
        table=np.zeros((vocab + buckets, dim), dtype=np.float16),
        w1=np.zeros((dim, hidden), dtype=np.float32), b1=np.zeros(hidden, dtype=np.float32),
        w2=np.zeros((hidden, labels), dtype=np.float32), b2=np.zeros(labels, dtype=np.float32),
        thresholds=np.full(labels, threshold, dtype=np.float32),
        vocab=vocab, buckets=buckets, span=4, flag_level=0.25, version="test-screen",
        teacher=teacher if teacher is not None else version,
    )
    return folder


def top(findings: list) -> dict[str, float]:  # type: ignore[type-arg]
    return {f.category: round(f.score, 6) for f in findings}


def test_a_screen_that_escalates_every_window_changes_nothing(tmp_path: Path) -> None:
    plain = ClassifierDetector(cascade=False)
    screened = ClassifierDetector(model_with_screen(tmp_path / "m", threshold=0.0))
    texts = [*HARMFUL, "A recipe for lentil soup, and the weather in Lyon. " * 40]
    assert [top(f) for f in screened.detect(texts)] == [top(f) for f in plain.detect(texts)]
    assert screened.screen is not None
    assert screened.stats()["escalated"] == screened.stats()["windows"] > len(texts)


def test_windows_the_screen_clears_are_not_encoded(tmp_path: Path) -> None:
    screened = ClassifierDetector(model_with_screen(tmp_path / "m", threshold=0.9))
    assert ClassifierDetector(cascade=False).detect(HARMFUL[:1])[0], "the fixture is a positive"
    assert screened.detect(HARMFUL) == [[] for _ in HARMFUL]
    assert screened.stats()["escalated"] == screened.stats()["encoded"] == 0


def test_a_failing_screen_applies_the_fail_mode(tmp_path: Path) -> None:
    detector = ClassifierDetector(model_with_screen(tmp_path / "m", threshold=0.0))
    detector.load()
    assert detector.screen is not None

    def broken(windows: object) -> np.ndarray:
        raise RuntimeError("screen failed")

    detector.screen.escalate = broken  # type: ignore[method-assign]
    policy = load_policy(None)
    engine = Engine(policy, detectors=[detector])
    try:
        verdict = engine.check_sync(["A recipe for lentil soup."], "prompt")[0]
    finally:
        engine.close()
    assert policy.fail_mode == "closed"
    assert verdict.action == "block" and verdict.error, verdict


def test_a_screen_from_another_encoder_is_not_used(tmp_path: Path) -> None:
    detector = ClassifierDetector(model_with_screen(tmp_path / "m", threshold=0.9, teacher="another-encoder"))
    findings = detector.detect(HARMFUL[:1])
    assert detector.screen is None and findings[0], "the encoder read the window"


def test_windows_seen_before_are_served_from_the_cache() -> None:
    detector = ClassifierDetector(cascade=False)
    first = detector.detect(HARMFUL)
    encoded = detector.stats()["encoded"]
    again = detector.detect(HARMFUL)
    assert [top(f) for f in again] == [top(f) for f in first]
    assert detector.stats()["encoded"] == encoded, "no window was run twice"


class ListHit:
    """A rule list that hits every text, weakly: its verdict needs the model's reading."""

    name = "rules"

    def load(self) -> None:
        pass

    def detect(self, texts: list[str]) -> list[list[Finding]]:
        return [[Finding("hate", 0.3, self.name, (0, 1), "list:test", witness=Witness.LIST)] for _ in texts]


def test_a_text_a_rule_list_hit_is_read_by_the_encoder(tmp_path: Path) -> None:
    plain = ClassifierDetector(cascade=False)
    screened = ClassifierDetector(model_with_screen(tmp_path / "m", threshold=0.9))
    hit = [[Finding("hate", 0.3, "rules", (0, 1), "list:test", witness=Witness.LIST)] for _ in HARMFUL]
    assert [top(f) for f in screened.detect_after(HARMFUL, hit)] == [top(f) for f in plain.detect(HARMFUL)]
    assert screened.detect(HARMFUL) == [[] for _ in HARMFUL], "without the hit, the screen clears them"

    engine = Engine(load_policy(None), detectors=[ListHit(), screened])
    try:
        [verdict] = engine.check_sync(HARMFUL[:1], "prompt")
    finally:
        engine.close()
    assert {f.source for f in verdict.findings} == {"rules", "classifier"}, verdict.findings


def test_a_screen_that_guarantees_less_than_the_policy_acts_on_is_not_used(tmp_path: Path) -> None:
    model = str(model_with_screen(tmp_path / "m", threshold=0.9))  # its flag_level is 0.25
    detectors = {"rules": {"enabled": False}, "ncii": {"enabled": False},
                 "classifier": {"enabled": True, "model": model}}
    low = load_policy(None).model_dump(mode="json")["categories"]
    low["sexual"]["prompt"] = {"threshold": 0.2, "action": "annotate"}

    [acting_low] = build_detectors(make_policy(detectors=detectors, categories=low))
    [as_shipped] = build_detectors(make_policy(detectors=detectors))
    for detector in (acting_low, as_shipped):
        assert isinstance(detector, ClassifierDetector)
        detector.load()
    assert acting_low.screen is None and acting_low.detect(HARMFUL[:1])[0], "the encoder read the window"
    assert as_shipped.screen is not None


def model_with_student(folder: Path, *, level: float) -> Path:
    """The shipped model beside a "student" that is the encoder itself, escalating from `level`:
    the cascade must then keep exactly the encoder's findings at or above `level`."""
    folder.mkdir()
    for name in ("model.onnx", "tokenizer.json", "config.json"):
        (folder / name).symlink_to(default_model_dir() / name)
    (folder / "screen.onnx").symlink_to(default_model_dir() / "model.onnx")
    config = json.loads((default_model_dir() / "config.json").read_text())
    (folder / "screen.json").write_text(json.dumps({
        "kind": "student", "version": "test-student", "teacher": config["version"], "flag_level": level,
        "thresholds": {c: level for c in config["labels"]}}))
    return folder


BENIGN = [row["text"] for row in map(json.loads, (FIXTURES / "benign.jsonl").read_text(encoding="utf-8").splitlines())]


def test_a_student_screen_keeps_every_finding_from_its_flag_level(tmp_path: Path) -> None:
    level = 0.5
    plain = ClassifierDetector(cascade=False)
    student = ClassifierDetector(model_with_student(tmp_path / "m", level=level))
    texts = [*HARMFUL, *BENIGN]

    def above(findings: list) -> dict[str, float]:  # type: ignore[type-arg]
        return {c: s for c, s in top(findings).items() if s >= level}

    expected = [above(f) for f in plain.detect(texts)]
    assert any(expected) and not all(expected), "the fixtures have windows on both sides of the level"
    assert [above(f) for f in student.detect(texts)] == expected
    assert isinstance(student.screen, StudentScreen)
    stats = student.stats()
    assert 0 < stats["escalated"] < stats["windows"], stats


def test_screen_verdicts_are_cached_by_window(tmp_path: Path) -> None:
    detector = ClassifierDetector(model_with_student(tmp_path / "m", level=0.5))
    detector.load()
    assert detector.screen is not None
    asked: list[int] = []
    escalate = detector.screen.escalate

    def counting(windows):  # type: ignore[no-untyped-def]
        asked.append(len(windows))
        return escalate(windows)

    detector.screen.escalate = counting  # type: ignore[method-assign]
    first = detector.detect(HARMFUL)
    assert sum(asked) > 0
    asked.clear()
    assert detector.detect(HARMFUL) == first
    assert sum(asked) == 0, "a window read before is not screened again"
