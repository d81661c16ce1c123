# ruff: noqa: RUF001  (typographic characters are the point here)
"""The NCII detector (issue 6): signals combine, spans explain, legitimate look-alikes pass.

Example texts live in tests/fixtures/ncii/cases.jsonl (never inline here). Most tests use the
signal lists only (`use_ner="never"`), so they need no spaCy model; one test runs presidio
through `safety_filter.pii.find_people` when that module and its models are installed
(offline, `HF_HUB_OFFLINE=1`), and is skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from safety_filter.detectors.base import Detector
from safety_filter.detectors.ncii import NCIIDetector
from safety_filter.findings import Category
from safety_filter.text.language import guess_language
from safety_filter.text.view import lower_fold

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FIXTURES = Path(__file__).parent / "fixtures" / "ncii" / "cases.jsonl"
CASES = [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines() if line.strip()]
FLAG = [c for c in CASES if c["expect"] == "flag"]  # "ner_only" rows are used by name below
NO_FLAG = [c for c in CASES if c["expect"] == "no_flag"]


def case(case_id: str) -> dict:
    return next(c for c in CASES if c["id"] == case_id)


@pytest.fixture(scope="module")
def det() -> NCIIDetector:
    d = NCIIDetector(use_ner="never")
    d.load()
    return d


def test_is_a_detector(det: NCIIDetector) -> None:
    assert isinstance(det, Detector)
    assert det.name == "ncii"


def test_fixtures_cover_both_languages_and_all_legit_kinds() -> None:
    assert {c["lang"] for c in FLAG} == {"en", "fr"}
    assert {c["lang"] for c in NO_FLAG} == {"en", "fr"}
    kinds = {c["kind"] for c in NO_FLAG}
    assert {"victim_help", "news_policy", "fictional_consensual", "nonsexual_named_person"} <= kinds


@pytest.mark.parametrize("c", FLAG, ids=[c["id"] for c in FLAG])
def test_positive_is_flagged_non_consensual(det: NCIIDetector, c: dict) -> None:
    findings = det.detect([c["text"]])[0]
    assert findings, f"not flagged: {c['id']}"
    assert all(f.category == Category.NON_CONSENSUAL.value for f in findings)
    assert all(f.source == "ncii" for f in findings)
    assert max(f.score for f in findings) >= 0.5


@pytest.mark.parametrize("c", NO_FLAG, ids=[c["id"] for c in NO_FLAG])
def test_legitimate_text_is_not_flagged(det: NCIIDetector, c: dict) -> None:
    findings = det.detect([c["text"]])[0]
    assert not [f for f in findings if f.category == Category.NON_CONSENSUAL.value], (c["id"], findings)


@pytest.mark.parametrize("case_id", ["en-nudify_request-00", "fr-nudify_request-06"])
def test_named_person_nudify_has_person_and_intent_spans(det: NCIIDetector, case_id: str) -> None:
    text = case(case_id)["text"]
    findings = det.detect([text])[0]
    by_rule = {f.rule_id: f for f in findings}
    person = by_rule.get("ncii:person:figure")
    assert person is not None and person.span is not None
    intent = [f for f in findings if (f.rule_id or "").startswith("ncii:intent:alter:")]
    assert intent and intent[0].span is not None
    # spans point into the original text (accents and case preserved)
    name = text[person.span[0]:person.span[1]]
    assert name and name[0].isupper()
    assert intent[0].span[1] <= len(text)
    combined = by_rule["ncii:combined"]
    assert combined.span is None and "alter+person" in (combined.evidence or "")
    assert combined.score >= 0.9


def test_relational_reference_counts_as_real_person(det: NCIIDetector) -> None:
    text = case("en-nudify_request-01")["text"]
    rules = {f.rule_id for f in det.detect([text])[0]}
    assert "ncii:person:relation" in rules


def test_framing_is_reported_when_it_lowers_a_score(det: NCIIDetector) -> None:
    text = case("en-victim_help-10")["text"]
    result = det.score(text)
    assert result.rule  # intimate-image signals are there...
    assert result.framing and result.framing[0].group == "victim_help"  # ...but the victim's framing lowers them
    assert result.score < det.threshold


def test_batch_keeps_order(det: NCIIDetector) -> None:
    cases = FLAG + NO_FLAG
    texts = [c["text"] for c in cases]
    out = det.detect(texts)
    assert len(out) == len(texts)
    for c, findings in zip(cases, out, strict=True):
        assert bool(findings) == (c["expect"] == "flag"), c["id"]


def test_empty_and_odd_inputs(det: NCIIDetector) -> None:
    assert det.detect([]) == []
    assert det.detect(["", "   ", "ÆŒ ß ‐"]) == [[], [], []]


def test_normalisation_keeps_offsets() -> None:
    s = "Déshabille ÉLODIE’s Œuvre"
    n = lower_fold(s)
    assert len(n) == len(s)
    assert n.startswith("deshabille elodie's")


def test_language_guess() -> None:
    assert guess_language(lower_fold(case("fr-news_policy-17")["text"])) == "fr"
    assert guess_language(lower_fold(case("en-news_policy-11")["text"])) == "en"


def test_classifier_scores_combine() -> None:
    """A classifier callable adds a finding for a person + high non_consensual score, and a
    confident 'no' halves a framed score."""
    calls: list[int] = []

    def clf(texts):
        calls.append(len(texts))
        return [{"non_consensual": 0.97, "sexual": 0.9} for _ in texts]

    d = NCIIDetector(use_ner="never", classifier=clf)
    # nonsexual text about a named person: rules say nothing, classifier says NCII
    text = case("en-nonsexual_named_person-13")["text"]
    findings = d.detect([text])[0]
    assert calls == [1]
    rules = {f.rule_id for f in findings}
    assert "ncii:classifier" in rules and "ncii:combined" in rules

    def clf_no(texts):
        return [{"non_consensual": 0.01, "sexual": 0.02} for _ in texts]

    d2 = NCIIDetector(use_ner="never", classifier=clf_no)
    plain = NCIIDetector(use_ner="never")
    victim = case("en-victim_help-10")["text"]
    assert d2.score(victim, {"non_consensual": 0.01}).score <= plain.score(victim).score
    assert d2.detect([victim]) == [[]]


def test_people_finder_is_used_for_unlisted_names() -> None:
    """A PERSON span from the NER hook is a (weak) person signal, with its span."""
    seen: list[tuple[str, str]] = []

    def finder(text: str, language: str):
        seen.append((text, language))
        i = text.index("Zorblax")
        return [{"start": i, "end": i + len("Zorblax Quintavalle"), "score": 0.85}]

    d = NCIIDetector(people_finder=finder)
    text = case("en-ner-only-21")["text"]
    findings = d.detect([text])[0]
    assert seen and seen[0][1] == "en"
    ner = [f for f in findings if f.rule_id == "ncii:person:ner"]
    assert ner and text[ner[0].span[0]:ner[0].span[1]] == "Zorblax Quintavalle"


def test_ner_is_skipped_without_intent() -> None:
    seen: list[str] = []
    d = NCIIDetector(people_finder=lambda t, lang: seen.append(t) or [])
    d.detect([case("en-nonsexual_named_person-13")["text"]])
    assert seen == []


def test_ner_errors_raise_are_counted_and_apply_the_fail_mode(caplog: pytest.LogCaptureFixture) -> None:
    from safety_filter import metrics
    from safety_filter.engine import Engine
    from safety_filter.errors import InspectionError
    from safety_filter.findings import Action
    from tests.helpers import make_policy

    def broken(text, language):
        raise OSError("model not installed")

    counter = metrics.current().detector_errors.labels("ncii", "ner")
    before = counter._value.get()
    d = NCIIDetector(people_finder=broken, use_ner="always")
    with caplog.at_level("ERROR"), pytest.raises(InspectionError, match="OSError"):
        d.detect([case("en-nudify_request-00")["text"]])
    assert d.ner_error and "OSError" in d.ner_error
    assert "person recognition failed" in caplog.text
    assert counter._value.get() == before + 1
    engine = Engine(make_policy(fail_mode="closed"), [d])
    [verdict] = engine.check_sync([case("en-nudify_request-01")["text"]], "prompt")
    assert verdict.action is Action.BLOCK and "OSError" in (verdict.error or "")


def test_classifier_errors_raise_and_are_counted() -> None:
    from safety_filter import metrics
    from safety_filter.errors import InspectionError

    def broken(texts):
        raise RuntimeError("onnx session died")

    counter = metrics.current().detector_errors.labels("ncii", "classifier")
    before = counter._value.get()
    d = NCIIDetector(classifier=broken, people_finder=False)
    with pytest.raises(InspectionError, match="onnx session died"):
        d.detect([case("en-nudify_request-00")["text"]])
    assert counter._value.get() == before + 1
    assert d.detect(["the weather is nice today"]) == [[]]  # nothing to ask the classifier: no error


def test_signal_lists_are_not_rule_lists() -> None:
    """The rules detector must never load blocklists/_ncii as blocking lists."""
    from safety_filter.detectors.rules import list_files
    from safety_filter.resources import blocklists_dir

    loaded = {p.resolve() for p in list_files(blocklists_dir())}
    assert not any("_ncii" in p.parts for p in loaded)


@pytest.mark.slow
def test_presidio_offline_finds_people() -> None:
    """presidio and the spaCy models (the pii extra, which the test extra installs): offline, their
    PERSON alone flags a request naming someone no list knows (the lists alone do not)."""
    from safety_filter import pii

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    d = NCIIDetector(use_ner="always")
    d.load()
    assert d.people_finder is pii.find_people and d.ner_error is None
    lists_only = NCIIDetector(use_ner="never")
    for c in (case("en-ner-real-22"), case("fr-ner-real-23")):
        assert lists_only.detect([c["text"]]) == [[]], c["id"]
        findings = d.detect([c["text"]])[0]
        ner = [f for f in findings if f.rule_id == "ncii:person:ner"]
        assert ner and ner[0].span is not None, (c["id"], findings)
        name = c["text"][ner[0].span[0]:ner[0].span[1]]
        assert name in ("Jessica Moore", "Camille Durand"), (c["id"], name)
    assert d.ner_error is None


@pytest.mark.parametrize("warm", [False, True])
def test_without_the_pii_extra_names_come_from_the_fallback_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, warm: bool
) -> None:
    """presidio and spaCy are the `pii` extra: missing, the detector says so and still reads names."""
    from safety_filter import pii

    monkeypatch.setitem(pii.SPACY_MODELS, "en", "zz_no_such_spacy_model")
    d = NCIIDetector()
    with caplog.at_level("WARNING", logger="safety_filter.detectors.ncii"):
        d.warm_up() if warm else d.load()
    assert d.people_finder is None
    assert d.ner_error is not None and "safety-filter[pii]" in d.ner_error
    assert "capitalised-words fallback" in caplog.text and "zz_no_such_spacy_model" in caplog.text
    text = case("en-ner-real-22")["text"]
    findings = d.detect([text])[0]  # no InspectionError: the fallback reads the name
    assert any(f.rule_id == "ncii:person:name_heuristic" for f in findings), findings
    assert any(f.category == "non_consensual" for f in findings), findings


def test_classifier_adapter_reads_findings() -> None:
    from safety_filter.detectors.ncii import classifier_scores_from
    from safety_filter.findings import Finding

    class FakeClassifier:
        name = "classifier"

        def load(self) -> None: ...

        def detect(self, texts):
            return [[Finding("sexual", 0.6, "classifier"), Finding("non_consensual", 0.8, "classifier"),
                     Finding("non_consensual", 0.9, "classifier")] for _ in texts]

    scores = classifier_scores_from(FakeClassifier())(["a", "b"])
    assert scores == [{"sexual": 0.6, "non_consensual": 0.9}] * 2


def test_classifier_rule_uses_the_classifiers_own_threshold() -> None:
    text = case("en-nonsexual_named_person-13")["text"]

    def clf(texts):
        return [{"non_consensual": 0.63, "sexual": 0.1} for _ in texts]

    assert NCIIDetector(use_ner="never", classifier=clf).detect([text])[0]  # default t = 0.6
    clf.thresholds = {"non_consensual": 0.66, "sexual": 0.74}
    assert NCIIDetector(use_ner="never", classifier=clf).detect([text]) == [[]]


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("public_figures.yaml", "figures:", "people:", r"public_figures.yaml: people: unknown key"),
        ("intent.yaml", "re: '\\bnudif", "re: '(\\bnudif", r"intent.yaml: groups.alter.1.re: invalid regex"),
        ("exclusions.yaml", "factor: 0.3", "factor: lots", r"exclusions.yaml: groups.victim_help.factor: "),
        ("relations.yaml", "possessives:", "possessive:", r"relations.yaml: en.possessive: unknown key"),
    ],
)
def test_a_bad_signal_file_names_the_file_and_key(tmp_path: Path, file: str, old: str, new: str, message: str) -> None:
    from safety_filter.detectors.ncii import SignalFileError
    from safety_filter.resources import blocklists_dir

    folder = tmp_path / "_ncii"
    shutil.copytree(blocklists_dir() / "_ncii", folder)
    text = (folder / file).read_text(encoding="utf-8")
    assert old in text
    (folder / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SignalFileError, match=message):
        NCIIDetector(folder, use_ner="never").load()
