"""The NCII detector's Hyperscan prefilter changes its cost, never its signals.

Every text of the NCII fixtures and data (and random ASCII texts made of the words its patterns
look for) gets exactly the signals of the full Python scan; a text the prefilter cannot vouch
for (not ASCII) runs every pattern.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_filter.detectors.ncii import NCIIDetector
from safety_filter.detectors.ncii.prefilter import Prefilter

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "tests/fixtures/ncii/cases.jsonl", *sorted((ROOT / "classifiers/data/ncii").glob("*.jsonl"))]
TEXTS = [json.loads(line)["text"] for path in FILES for line in path.read_text(encoding="utf-8").splitlines()
         if line.strip()]
# Words the intent and framing patterns are built from, and separators between them.
WORDS = [
    "undress", "her", "make", "naked", "nude", "nudes", "photo", "pic", "of", "my", "ex", "leak", "post", "share",
    "deepfake", "sex", "tape", "hidden", "camera", "in", "the", "shower", "without", "knowing", "unless", "you",
    "pay", "send", "me", "address", "where", "she", "lives", "news", "report", "help", "victim", "de", "ma",
    "collegue", "nue", "photos", "intimes", "deshabille", "publier", "sans", "vetements",
]
SEPARATORS = [" ", "  ", "-", ", ", ". ", "\n", "'"]


@pytest.fixture(scope="module")
def det() -> NCIIDetector:
    detector = NCIIDetector(use_ner="never")
    detector.load()
    return detector


def full_scan(det: NCIIDetector, text: str, monkeypatch: pytest.MonkeyPatch) -> list:  # type: ignore[type-arg]
    with monkeypatch.context() as patched:
        patched.setattr(det.data.prefilter, "candidates", lambda text: None)
        return det.signals(text)


def test_the_data_has_texts_with_signals(det: NCIIDetector) -> None:
    assert len(TEXTS) > 1000
    assert sum(bool(det.signals(t)) for t in TEXTS) > 500
    assert not det.data.prefilter.always, "every pattern compiles for the prefilter"


def test_prefiltered_signals_equal_the_full_scan_on_the_data(
    det: NCIIDetector, monkeypatch: pytest.MonkeyPatch
) -> None:
    differ = [t for t in TEXTS if det.signals(t) != full_scan(det, t, monkeypatch)]
    assert not differ, differ[:3]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=24))
def test_prefiltered_signals_equal_the_full_scan_on_word_salad(det: NCIIDetector, words: list[tuple[str, str]]) -> None:
    text = "".join(w + sep for w, sep in words)
    with pytest.MonkeyPatch.context() as patched:
        prefiltered = det.signals(text)
        patched.setattr(det.data.prefilter, "candidates", lambda text: None)
        assert prefiltered == det.signals(text)


def test_a_text_that_is_not_ascii_runs_every_pattern(det: NCIIDetector) -> None:
    assert det.data.prefilter.candidates("make my ex naked") is not None
    assert det.data.prefilter.candidates("make my ex naked 日本") is None


def test_a_pattern_hyperscan_cannot_compile_runs_on_every_text() -> None:
    prefilter = Prefilter(["undress", "(?R)"])  # recursion: Hyperscan refuses it even as a prefilter
    assert prefilter.always == {1}
    assert prefilter.candidates("a recipe for soup") == {1}
    assert prefilter.candidates("undress her") == {0, 1}
