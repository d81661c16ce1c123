"""The shipped classifier loads offline and separates clear positives from clear negatives.

Fixtures (tests/fixtures/classifier_smoke.jsonl) hold the texts; assertions are on ranking and
threshold behaviour, never on exact scores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from safety_filter.detectors.base import Detector
from safety_filter.detectors.classifier import ClassifierDetector, default_model_dir
from safety_filter.findings import CATEGORIES
from safety_filter.text.sentences import sentence_spans

pytestmark = pytest.mark.slow  # real servers or real models

FIXTURES = Path(__file__).parent / "fixtures" / "classifier_smoke.jsonl"

pytest.importorskip("onnxruntime")
if not (default_model_dir() / "model.onnx").exists():  # pragma: no cover
    pytest.skip("shipped model not present", allow_module_level=True)


@pytest.fixture(scope="module")
def det() -> ClassifierDetector:
    d = ClassifierDetector(threads=2)
    d.load()
    d.load()  # idempotent
    return d


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def scores(det, rows) -> list[dict[str, float]]:
    return det.scores([r["text"] for r in rows])


def test_protocol_and_config(det):
    assert isinstance(det, Detector)
    assert det.name == "classifier"
    assert set(det.labels) == set(CATEGORIES)
    assert all(0.0 < det.thresholds[c] < 1.0 for c in CATEGORIES)


def test_torch_not_imported_by_runtime():
    import subprocess
    import sys

    code = ("import sys; from safety_filter.detectors.classifier import ClassifierDetector as C; "
            "d = C(); d.load(); d.detect(['hello']); print('torch' in sys.modules)")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert out.stdout.strip().endswith("False")


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_positives_outrank_negatives(rows, scores, lang):
    pos = [max(s.values()) for r, s in zip(rows, scores, strict=True) if r["labels"] and r["lang"] == lang]
    neg = [max(s.values()) for r, s in zip(rows, scores, strict=True) if not r["labels"] and r["lang"] == lang]
    assert pos and neg
    # ranking: the large majority of (positive, negative) pairs are ordered correctly
    pairs = [(p > n) for p in pos for n in neg]
    assert sum(pairs) / len(pairs) >= 0.85
    # the median positive is well above the median negative
    pos.sort()
    neg.sort()
    assert pos[len(pos) // 2] > neg[len(neg) // 2] + 0.3


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_threshold_behaviour(det, rows, scores, lang):
    def flagged(s):
        return {c for c, v in s.items() if v >= det.thresholds[c]}

    pos = [(r, s) for r, s in zip(rows, scores, strict=True) if r["labels"] and r["lang"] == lang]
    neg = [(r, s) for r, s in zip(rows, scores, strict=True) if not r["labels"] and r["lang"] == lang]
    hit = sum(bool(flagged(s)) for _, s in pos) / len(pos)
    false = sum(bool(flagged(s)) for _, s in neg) / len(neg)
    assert hit >= 0.7, f"{lang}: only {hit:.0%} of clear positives flagged"
    assert false <= 0.2, f"{lang}: {false:.0%} of clear negatives flagged"


def test_right_category_ranks_first_for_most_positives(rows, scores):
    ok = [max(s, key=s.get) in r["labels"] for r, s in zip(rows, scores, strict=True) if r["labels"]]
    assert sum(ok) / len(ok) >= 0.7


def test_findings_shape_and_long_text_chunking(det):
    benign = "The weather was nice and we walked along the river, talking about books and music. " * 30
    bad = "Muslims are vermin and should all be deported."
    text = benign + bad + " " + benign
    [findings] = det.detect([text])
    hate = [f for f in findings if f.category == "hate"]
    assert hate, "the hateful sentence inside a long text is found"
    f = hate[0]
    assert f.source == "classifier" and f.rule_id.startswith("classifier:")
    assert f.span is not None and f.span[0] <= text.index(bad) < f.span[1]
    # windows keep the sentence visible: far above the same text without it (mean pooling over a
    # window still dilutes a short sentence in long benign context; see the model card)
    only_benign = det.scores([benign + benign])[0]["hate"]
    assert f.score > max(0.1, 5 * only_benign)
    assert det.detect([]) == []
    # nothing to read: one result each, every score under the model's own threshold, no span beyond the text
    empty = det.detect(["", "   "])
    assert len(empty) == 2
    for text, found in zip(["", "   "], empty, strict=True):
        assert all(f.score < det.thresholds.get(f.category, 0.5) for f in found), found
        assert all(f.span is None or f.span[1] <= len(text) for f in found), found


def test_batch_matches_single(det, rows):
    texts = [r["text"] for r in rows[:6]]
    batched = det.scores(texts)
    single = [det.scores([t])[0] for t in texts]
    # dynamic int8 quantises activations with a per-batch range, so batching moves scores slightly
    for b, s in zip(batched, single, strict=True):
        for c in b:
            assert abs(b[c] - s[c]) < 0.06


def test_a_harmful_sentence_is_not_diluted_by_benign_text_before_it(det):
    """The issue's attack: about 150 benign characters before a sentence the model flags alone
    hid it in a mean-pooled window. Sentence views score it as it scores alone (one sentence:
    a harmful passage of several sentences is read whole or one sentence at a time, not in pairs)."""
    obfuscation = Path(__file__).parent / "fixtures" / "obfuscation" / "harmful.jsonl"
    harmful = [json.loads(line)["text"] for line in obfuscation.read_text(encoding="utf-8").splitlines()]
    harmful = [text for text in harmful if len(sentence_spans(text)) == 1]
    prefix = ("The weather report said it would rain all afternoon, so we moved the picnic indoors and "
              "played board games with the neighbours until late. ")
    caught = 0
    for sentence in harmful:
        [alone] = det.scores([sentence])
        category = max(alone, key=alone.get)
        if alone[category] < 0.5:
            continue
        caught += 1
        [findings] = det.detect([prefix + sentence])
        [found] = [f for f in findings if f.category == category]
        assert found.score >= alone[category] - 0.1, (sentence, alone[category], found.score)
        assert found.span is not None and found.span[1] > len(prefix)  # the window holds the sentence
    assert caught >= 10
