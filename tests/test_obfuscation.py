"""Every obfuscation family, for every detector: the obfuscated sentence scores like the clean one.

The harmful sentences (`fixtures/obfuscation/harmful.jsonl`) are positives the shipped stack
catches, each tagged with the detector that catches it clean; `tests/obfuscation.py` spells them
in each family (zero-width, soft hyphen, tags, bidi, combining marks, Cyrillic/Greek/Armenian/
Lisu look-alikes, HTML entities, negative circled/squared and parenthesized letters, NUL/emoji
between letters, spaced letters, hyphen/dot/underscore splits, leetspeak). Benign texts
(`benign.jsonl`) spelled the same ways must not be flagged by the rules or NCII detectors.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from safety_filter.detectors.classifier import ClassifierDetector
from safety_filter.detectors.ncii import NCIIDetector
from safety_filter.detectors.rules import RulesDetector
from safety_filter.findings import Finding
from safety_filter.text.view import model_view
from tests.obfuscation import FAMILIES, plain

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FIXTURES = Path(__file__).parent / "fixtures" / "obfuscation"
HARMFUL = [json.loads(line) for line in (FIXTURES / "harmful.jsonl").read_text(encoding="utf-8").splitlines()]
BENIGN = [json.loads(line)["text"] for line in (FIXTURES / "benign.jsonl").read_text(encoding="utf-8").splitlines()]
# The classifier's view keeps hyphens ("ex-wife" is two words), so it reads "geno-cide" as it is
# written: hyphen splits are the rules' job (their fused view), not the model's.
CLASSIFIER_FAMILIES = [f for f in FAMILIES if f != "hyphen_split"]
# NCII's patterns read the view too ("ex-girlfriend" must stay two words for its relation list)
NCII_FAMILIES = CLASSIFIER_FAMILIES
TOLERANCE = 0.2


def _rows(detector: str) -> list[str]:
    return [r["text"] for r in HARMFUL if r["detector"] == detector]


def _top(findings: list[Finding], category: str | None = None) -> float:
    return max((f.score for f in findings if category is None or f.category == category), default=0.0)


@pytest.fixture(scope="module")
def rules() -> RulesDetector:
    det = RulesDetector()
    det.load()
    return det


@pytest.fixture(scope="module")
def classifier() -> ClassifierDetector:
    det = ClassifierDetector()
    det.load()
    return det


@pytest.fixture(scope="module")
def ncii() -> NCIIDetector:
    det = NCIIDetector(people_finder=False, use_ner="never")
    det.load()
    return det


def test_fixtures_hold_positives_for_every_detector() -> None:
    assert {r["detector"] for r in HARMFUL} == {"rules", "classifier", "ncii"}
    assert {r["lang"] for r in HARMFUL if r["detector"] == "classifier"} == {"en", "fr"}


@pytest.mark.parametrize("family", FAMILIES)
def test_rules_hold(rules: RulesDetector, family: str) -> None:
    texts = _rows("rules")
    clean = rules.detect(texts)
    obfuscated = rules.detect([FAMILIES[family](t) for t in texts])
    for text, c, o in zip(texts, clean, obfuscated, strict=True):
        assert _top(o) >= _top(c), (family, text, FAMILIES[family](text))


@pytest.mark.slow
@pytest.mark.parametrize("family", CLASSIFIER_FAMILIES)
def test_classifier_holds(classifier: ClassifierDetector, family: str) -> None:
    texts = _rows("classifier")
    clean = classifier.detect([plain(t, family) for t in texts])
    obfuscated_texts = [FAMILIES[family](t) for t in texts]
    obfuscated = classifier.detect(obfuscated_texts)
    drops = []
    for text, c, o in zip(obfuscated_texts, clean, obfuscated, strict=True):
        best = max(c, key=lambda f: f.score)
        drops.append(best.score - _top(o, best.category))
        for f in o:  # spans index the obfuscated text the client sent
            assert f.span is not None and 0 <= f.span[0] <= f.span[1] <= len(text)
    assert max(drops) <= TOLERANCE, (family, drops)


@pytest.mark.parametrize("family", NCII_FAMILIES)
def test_ncii_holds(ncii: NCIIDetector, family: str) -> None:
    texts = _rows("ncii")
    clean = ncii.detect(texts)
    obfuscated = ncii.detect([FAMILIES[family](t) for t in texts])
    for text, c, o in zip(texts, clean, obfuscated, strict=True):
        assert _top(o) >= _top(c) - 0.1, (family, text, FAMILIES[family](text))


@pytest.mark.parametrize("family", FAMILIES)
def test_benign_not_flagged_by_lists(rules: RulesDetector, ncii: NCIIDetector, family: str) -> None:
    clean_rules = rules.detect(BENIGN)
    clean_ncii = ncii.detect(BENIGN)
    texts = [FAMILIES[family](t) for t in BENIGN]
    for text, cr, cn, o_r, o_n in zip(texts, clean_rules, clean_ncii, rules.detect(texts), ncii.detect(texts),
                                      strict=True):
        flagged = {f.category for f in o_r if f.score >= 0.5}
        assert flagged <= {f.category for f in cr if f.score >= 0.5}, (family, text, [f.rule_id for f in o_r])
        assert bool(o_n) == bool(cn), (family, text)


@pytest.mark.slow
def test_classifier_span_maps_back_to_the_original(classifier: ClassifierDetector) -> None:
    clean = _rows("classifier")[0]
    text = "Hello there. " + FAMILIES["zero_width"](clean)
    [findings] = classifier.detect([text])
    best = max(findings, key=lambda f: f.score)
    assert best.span is not None
    start, end = best.span
    assert model_view(text[start:end]).text.endswith(clean[-10:])


def test_benign_model_view_is_the_text_itself() -> None:
    """A natural text reaches the model unchanged (the view costs nothing on it)."""
    natural = [t for t in BENIGN if re.fullmatch(r"[^\W\d_]+(?:[ ,;'?!-]+[^\W\d_]+)*[.?!]?", t)]
    assert len(natural) >= 10
    for text in natural:
        view = model_view(text)
        assert view.text == text
        assert view.original_span(0, len(view.text)) == (0, len(text))


_SEED_SCRIPT = """
import json, sys
from safety_filter.detectors.ncii import NCIIDetector
from safety_filter.detectors.rules import RulesDetector
from safety_filter.resources import blocklists_dir
from safety_filter.text.normalize import normalize
from safety_filter.text.view import model_view
texts = json.load(sys.stdin)
rules = RulesDetector([blocklists_dir()]); rules.load()
ncii = NCIIDetector(use_ner="never"); ncii.load()
found = [[(f.rule_id, f.span, round(f.score, 6)) for f in fs] for fs in rules.detect(texts) + ncii.detect(texts)]
views = [(normalize(t).text, normalize(t, fuse=True).text, model_view(t).text) for t in texts]
print(json.dumps([views, found]))
"""


def test_views_and_list_verdicts_do_not_depend_on_the_hash_seed() -> None:
    """The same text gets the same views and findings in every process (string hashing is
    randomised per process: a tie broken by set order once changed French texts' views)."""
    texts = [json.loads(line)["text"] for name in ("harmful.jsonl", "benign.jsonl")
             for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    texts += ["Pourquoi y a-t-il des rats ? Que X a-t-il dit ? Va-t-on le croire ?"]
    runs = {subprocess.run([sys.executable, "-c", _SEED_SCRIPT], input=json.dumps(texts), capture_output=True,
                           text=True, check=True, env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout
            for seed in (0, 1, 2)}
    assert len(runs) == 1
