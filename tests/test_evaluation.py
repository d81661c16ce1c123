"""Metric math of safety_filter.evaluation (checked against hand-computed values)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from safety_filter.evaluation import (
    average_precision,
    evaluate,
    evaluate_verdicts,
    format_report,
    pr_curve,
    prf,
    row_labels,
)
from safety_filter.findings import Action, CategoryResult, Severity, Verdict


def test_average_precision_hand_computed():
    # ranking: 0.9(+) 0.8(-) 0.7(+) 0.1(-): AP = 1/2 * 1 + 1/2 * 2/3
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(0.5 + 1 / 3)
    assert average_precision([1, 1, 0], [0.9, 0.8, 0.1]) == pytest.approx(1.0)
    assert average_precision([0, 0, 1], [0.9, 0.8, 0.1]) == pytest.approx(1 / 3)
    assert average_precision([0, 0], [0.3, 0.2]) is None


def test_average_precision_ties_counted_together():
    # all tied: one threshold, precision = prevalence
    assert average_precision([1, 0, 0, 1], [0.5] * 4) == pytest.approx(0.5)


def test_average_precision_matches_reference_on_random_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = rng.random(300) + 0.3 * y
    # reference: mean over positives of precision at their rank (no ties with continuous scores)
    order = np.argsort(-s)
    ys = y[order]
    prec_at = np.cumsum(ys) / np.arange(1, len(ys) + 1)
    ref = float(np.sum(prec_at * ys) / ys.sum())
    assert average_precision(y, s) == pytest.approx(ref)


def test_pr_curve():
    p, r, t = pr_curve([1, 0, 1], [0.9, 0.5, 0.2])
    assert list(t) == [0.9, 0.5, 0.2]
    assert list(p) == pytest.approx([1.0, 0.5, 2 / 3])
    assert list(r) == pytest.approx([0.5, 0.5, 1.0])


def test_prf():
    m = prf(tp=3, fp=1, fn=3)
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.6)
    assert prf(0, 0, 2)["precision"] is None
    assert prf(0, 2, 2)["f1"] == 0.0


def test_row_labels():
    assert row_labels({"label": "hate"}) == {"hate"}
    assert row_labels({"label": "benign"}) == set()
    assert row_labels({"labels": []}) == set()
    assert row_labels({"labels": ["hate", "extremism"]}) == {"hate", "extremism"}


ROWS = [
    {"text": "a", "labels": ["hate"], "lang": "en"},
    {"text": "b", "labels": [], "lang": "en", "kind": "counter_speech"},
    {"text": "c", "label": "sexual", "lang": "fr"},
    {"text": "d", "label": "benign", "lang": "fr", "kind": "sex_ed"},
]


def _score_fn(texts, role):
    table = {"a": {"hate": 0.9, "sexual": 0.1}, "b": {"hate": 0.6, "sexual": 0.0},
             "c": {"hate": 0.1, "sexual": 0.8}, "d": {"hate": 0.0, "sexual": 0.3}}
    return [table[t] for t in texts]


def test_evaluate_with_plain_scores_and_thresholds():
    rep = evaluate(_score_fn, ROWS, categories=["hate", "sexual"], thresholds={"hate": 0.5, "sexual": 0.5})
    hate = rep["overall"]["categories"]["hate"]
    assert (hate["tp"], hate["fp"], hate["fn"]) == (1, 1, 0)
    assert hate["precision"] == pytest.approx(0.5) and hate["recall"] == 1.0
    assert hate["auprc"] == pytest.approx(1.0)
    assert rep["overall"]["benign"]["n"] == 2
    assert rep["overall"]["benign"]["false_block_rate"] == pytest.approx(0.5)
    assert rep["by_lang"]["fr"]["benign"]["false_block_rate"] == 0.0
    assert rep["benign_by_kind"]["counter_speech"]["false_block_rate"] == 1.0
    json.dumps(rep)  # serialisable
    text = format_report(rep)
    assert "hate" in text and "false-block" in text and "lang=fr" in text


def test_evaluate_verdicts_uses_action_and_filtered():
    def v(action, hate, sexual, fh=False, fs=False):
        return Verdict(action=action, categories={
            "hate": CategoryResult(hate, Severity.LOW, fh), "sexual": CategoryResult(sexual, Severity.LOW, fs)})

    verdicts = [v(Action.BLOCK, 0.9, 0.1, fh=True), v(Action.ANNOTATE, 0.6, 0.0, fh=True),
                v(Action.BLOCK, 0.1, 0.8, fs=True), v(Action.ALLOW, 0.0, 0.3)]
    rep = evaluate_verdicts(ROWS, verdicts, categories=["hate", "sexual"])
    assert rep["overall"]["benign"]["false_block_rate"] == 0.0  # annotate is not a block
    assert rep["overall"]["benign"]["false_flag_rate"] == pytest.approx(0.5)
    assert rep["overall"]["categories"]["sexual"]["f1"] == pytest.approx(1.0)
    rep2 = evaluate_verdicts(ROWS, [x.to_dict() for x in verdicts], categories=["hate", "sexual"])
    assert rep2["overall"] == rep["overall"]
    with pytest.raises(ValueError):
        evaluate_verdicts(ROWS, verdicts[:2])


# -- per-phenomenon reporting ------------------------------------------------------------------

PHENOMENA_ROWS = [
    {"text": "a", "labels": ["hate"], "lang": "en", "phenomenon": "threat", "variant": "plain"},
    {"text": "b", "labels": ["hate"], "lang": "en", "phenomenon": "threat", "variant": "leet"},
    {"text": "c", "labels": ["hate"], "lang": "fr", "phenomenon": "threat", "variant": "plain"},
    {"text": "d", "labels": [], "lang": "en", "phenomenon": "negation", "variant": "plain"},
    {"text": "e", "labels": [], "lang": "en", "phenomenon": "negation", "variant": "leet"},
    {"text": "f", "labels": [], "lang": "fr", "phenomenon": "negation", "variant": "plain"},
    {"text": "g", "labels": [], "lang": "fr", "phenomenon": "negation", "variant": "plain"},
]


def _verdict(action, hate=0.0, filtered=False, sexual_filtered=False):
    return Verdict(action=action, categories={"hate": CategoryResult(hate, Severity.LOW, filtered),
                                              "sexual": CategoryResult(0.6, Severity.MEDIUM, sexual_filtered)})


def test_phenomenon_accuracy_counts_caught_harm_and_unblocked_benign_rows():
    verdicts = [
        _verdict(Action.BLOCK, 0.9, filtered=True),          # en threat caught
        _verdict(Action.ANNOTATE, 0.2, sexual_filtered=True),  # en threat, leet: wrong category only -> missed
        _verdict(Action.BLOCK, 0.9, filtered=True),          # fr threat caught
        _verdict(Action.BLOCK, 0.7, filtered=True),          # en negation blocked: a false block
        _verdict(Action.ALLOW),                              # en negation allowed
        _verdict(Action.ANNOTATE, sexual_filtered=True),     # fr negation annotated, not blocked: right, but flagged
        _verdict(Action.ALLOW),                              # fr negation allowed
    ]
    rep = evaluate_verdicts(PHENOMENA_ROWS, verdicts, categories=["hate", "sexual"])
    threat, negation = rep["by_phenomenon"]["threat"], rep["by_phenomenon"]["negation"]
    assert threat["expected"] == "block" and negation["expected"] == "allow"
    assert threat["en"] == {"n": 2, "accuracy": 0.5, "harmful": 2, "caught_rate": 0.5}
    assert threat["fr"]["accuracy"] == 1.0 and threat["all"]["accuracy"] == pytest.approx(2 / 3)
    assert negation["en"]["false_block_rate"] == 0.5 and negation["en"]["accuracy"] == 0.5
    assert negation["fr"] == {"n": 2, "accuracy": 1.0, "benign": 2, "false_block_rate": 0.0, "false_flag_rate": 0.5}
    assert "caught_rate" not in negation["all"]
    leet = rep["by_variant"]["leet"]
    assert leet["expected"] == "mixed" and leet["en"]["caught_rate"] == 0.0 and leet["en"]["false_block_rate"] == 0.0
    text = format_report(rep)
    assert "by phenomenon" in text and "by variant" in text
    negation_line = next(line for line in text.splitlines() if line.strip().startswith("negation"))
    assert negation_line.split()[1:5] == ["allow", "2", "0.500", "0.500"]


def test_rows_without_phenomenon_get_no_phenomenon_table():
    rep = evaluate(_score_fn, ROWS, categories=["hate", "sexual"], thresholds={"hate": 0.5, "sexual": 0.5})
    assert "by_phenomenon" not in rep and "by_variant" not in rep
    assert "by phenomenon" not in format_report(rep)


def test_eval_command_reports_phenomena_end_to_end(tmp_path):
    """`safety-filter eval` on the real engine (rules only, invented terms): the table is in the report."""
    from safety_filter.cli import main

    lists = Path(__file__).parent / "fixtures" / "rules" / "invented.yaml"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "categories:\n"
        + "".join(f"  {c}:\n    prompt: {{threshold: 0.5, action: block}}\n"
                  f"    completion: {{threshold: 0.5, action: block}}\n"
                  for c in ("hate", "extremism", "non_consensual", "sexual"))
        + f"detectors:\n  rules: {{enabled: true, blocklists: ['{lists}']}}\n"
        "  classifier: {enabled: false}\n  ncii: {enabled: false}\n",
        encoding="utf-8",
    )
    rows = [
        {"text": "you zorblax", "labels": ["hate"], "lang": "en", "phenomenon": "slur"},
        {"text": "y o u z0rblax", "labels": ["hate"], "lang": "en", "phenomenon": "slur"},
        {"text": "zorblax is not a word I use", "labels": [], "lang": "en", "phenomenon": "negation"},
        {"text": "I would never say that word", "labels": [], "lang": "en", "phenomenon": "negation"},
    ]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "report.json"
    assert main(["eval", str(data), "--policy", str(policy), "--report", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["by_phenomenon"]["slur"]["en"]["caught_rate"] == 1.0
    assert report["by_phenomenon"]["negation"]["en"]["false_block_rate"] == 0.5
