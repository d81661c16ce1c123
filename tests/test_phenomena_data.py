"""The phenomenon data set (classifiers/data/phenomena): committed rows are what the generator
makes, splits never share a template, and English and French cover the same phenomena."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from classifiers import phenomena

CATEGORIES = {"hate", "extremism", "non_consensual", "sexual"}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return phenomena.expand()


def _committed(split: str) -> list[dict]:
    path = phenomena.DATA / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_committed_splits_are_what_the_generator_makes(rows):
    for split in phenomena.SPLITS:
        expected = [{k: v for k, v in r.items() if k != "split"} for r in rows if r["split"] == split]
        assert _committed(split) == expected, f"{split}.jsonl is stale: run python -m classifiers.phenomena"


def test_no_template_and_no_text_straddles_two_splits(rows):
    splits_of_template: dict[str, set[str]] = {}
    splits_of_text: dict[str, set[str]] = {}
    for r in rows:
        splits_of_template.setdefault(r["template"], set()).add(r["split"])
        splits_of_text.setdefault(r["text"].casefold(), set()).add(r["split"])
    assert all(len(s) == 1 for s in splits_of_template.values())
    assert [t for t, s in splits_of_text.items() if len(s) > 1] == []


def test_every_phenomenon_is_in_every_split_in_both_languages_at_parity(rows):
    counts = Counter((r["lang"], r["phenomenon"], r["split"]) for r in rows)
    names = {r["phenomenon"] for r in rows}
    assert len(names) >= 17
    for name in names:
        for split in phenomena.SPLITS:
            assert counts["en", name, split] > 0 and counts["fr", name, split] > 0, (name, split)
        en = sum(counts["en", name, s] for s in phenomena.SPLITS)
        fr = sum(counts["fr", name, s] for s in phenomena.SPLITS)
        assert 0.75 <= en / fr <= 1.33, (name, en, fr)
    per_lang = Counter(r["lang"] for r in rows)
    assert per_lang["en"] >= 3000 and per_lang["fr"] >= 3000


def test_labels_are_project_categories_and_one_phenomenon_never_mixes_harm_and_benign(rows):
    harm_of: dict[str, set[bool]] = {}
    for r in rows:
        assert set(r["labels"]) <= CATEGORIES
        harm_of.setdefault(r["phenomenon"], set()).add(bool(r["labels"]))
    assert all(len(v) == 1 for v in harm_of.values())
    assert {p for p, v in harm_of.items() if True in v} == {
        "derogation", "dehumanisation", "threat", "implicit_derogation", "slur"}


def test_spelling_variants_cover_harmful_and_benign_rows_and_leave_no_slot_unfilled(rows):
    variants = Counter((r["variant"], bool(r["labels"])) for r in rows if r["variant"] != "plain")
    for family in phenomena.VARIANTS:
        assert variants[family, True] > 0 and variants[family, False] > 0, family
    assert not [r["text"] for r in rows if "{" in r["text"] or "}" in r["text"]]


def test_a_template_with_too_few_siblings_is_refused():
    templates = [{"id": f"t{i}", "lang": "en", "phenomenon": "negation"} for i in range(2)]
    with pytest.raises(ValueError, match="at least 3"):
        phenomena.assign_splits(templates, seed=1)


def test_a_later_batch_of_templates_moves_no_earlier_template():
    first = [{"id": f"t{i}", "lang": "en", "phenomenon": "negation"} for i in range(5)]
    later = [{"id": f"t{i}", "lang": "en", "phenomenon": "negation", "batch": 2} for i in range(5, 9)]
    before = phenomena.assign_splits(first, seed=14)
    after = phenomena.assign_splits(first + later, seed=14)
    assert {k: after[k] for k in before} == before
    assert sorted(after[t["id"]] for t in later) == ["dev", "test", "train", "train"]
