# ruff: noqa: RUF001  (look-alike characters are the point here)
"""The rules detector: list formats, matching modes, allow exceptions, shipped lists, scale."""

from __future__ import annotations

import json
import random
import shutil
import string
import time
from pathlib import Path

import pytest

from safety_filter.detectors.base import Detector
from safety_filter.detectors.rules import BlocklistError, RulesDetector, check_regex, load_list, normalize_regex_source
from safety_filter.findings import CATEGORIES, Action, Finding, Witness

FIXTURES = Path(__file__).parent / "fixtures" / "rules"


def _load(*paths: str | Path) -> RulesDetector:
    det = RulesDetector([FIXTURES / p if isinstance(p, str) else p for p in paths])
    det.load()
    return det


def _ids(det: RulesDetector, text: str) -> list[str]:
    return [f.rule_id for f in det.detect([text])[0]]  # type: ignore[misc]


@pytest.fixture(scope="module")
def invented() -> RulesDetector:
    return _load("invented.yaml", "invented_plain.txt")


@pytest.fixture(scope="module")
def shipped() -> RulesDetector:
    det = RulesDetector()
    det.load()
    return det


# --- protocol and findings -----------------------------------------------------------------


def test_is_a_detector_and_constructor_does_no_work(tmp_path: Path) -> None:
    det = RulesDetector([tmp_path / "missing.yaml"])  # nothing is read yet
    assert isinstance(det, Detector)
    assert det.name == "rules"
    with pytest.raises(BlocklistError, match=r"missing\.yaml"):
        det.load()


def test_finding_shape(invented: RulesDetector) -> None:
    text = "well, you Z0RBL4X!"
    [finding] = invented.detect([text])[0]
    assert isinstance(finding, Finding)
    assert finding.category == "hate"
    assert finding.score == 1.0
    assert finding.source == "rules"
    assert finding.witness is Witness.LIST  # what makes `decide` count it as the list witness
    assert finding.rule_id == "invented:zorblax"
    assert finding.span is not None
    assert text[finding.span[0]:finding.span[1]] == "Z0RBL4X"
    assert finding.evidence == "Z0RBL4X"


def test_batch_keeps_order(invented: RulesDetector) -> None:
    out = invented.detect(["nothing", "zorblax", "", "flimzap"])
    assert [len(x) for x in out] == [0, 1, 0, 1]


def test_entry_id_and_score(invented: RulesDetector) -> None:
    [f] = invented.detect(["the glimmet fraud"])[0]
    assert f.rule_id == "invented:gf"
    [f] = invented.detect(["ploom"])[0]
    assert f.score == 0.6


# --- evasions through the detector ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["zorblax", "ZORBLAX", "ｚｏｒｂｌａｘ", "zоrblах", "zor\u200bblax", "zórblàx", "z0rbl4x",
     "z o r b l a x", "z.o.r.b.l.a.x", "z-o-r-b-l-a-x", "zooorrrblaaax", "say: zorblax!"],
)
def test_evasions_caught(invented: RulesDetector, text: str) -> None:
    assert _ids(invented, text) == ["invented:zorblax"]


def test_one_for_l(tmp_path: Path) -> None:
    path = tmp_path / "l.txt"
    path.write_text("#: category: hate\nglimmet\nzill\n", encoding="utf-8")
    det = _load(path)
    assert _ids(det, "g1immet") == ["l:glimmet"]
    assert _ids(det, "zi11") == ["l:zill"]
    assert _ids(det, "zi|l") == ["l:zill"]
    assert _ids(det, "zil") == []  # runs still apply


def test_span_of_obfuscated_match(invented: RulesDetector) -> None:
    text = "oh z . o . r . b . l . a . x indeed"
    [f] = invented.detect([text])[0]
    assert f.span is not None
    assert text[f.span[0]:f.span[1]] == "z . o . r . b . l . a . x"


def test_phrase_across_whitespace_and_joined(invented: RulesDetector) -> None:
    assert _ids(invented, "GLIMMET\n   FRAUD") == ["invented:gf"]
    assert _ids(invented, "#GlimmetFraud") == ["invented:gf"]
    assert _ids(invented, "glimmet-fraud") == ["invented:gf"]


# --- matching modes ----------------------------------------------------------------------------


def test_whole_word_by_default(invented: RulesDetector) -> None:
    assert _ids(invented, "zorblaxian") == []
    assert _ids(invented, "prezorblax") == []
    assert _ids(invented, "zorblaxes") == ["invented:zorblaxes"]
    assert _ids(invented, "(zorblax)") == ["invented:zorblax"]


def test_substring_prefix_suffix(invented: RulesDetector) -> None:
    assert _ids(invented, "aquxxb") == ["invented:quxx"]
    assert _ids(invented, "vrobbing") == ["invented:vrob"]
    assert _ids(invented, "avrob") == []
    txt = _load("invented_plain.txt")
    assert [f.rule_id for f in txt.detect(["xxquorbishxx"])[0]] == ["invented_plain:quorbish"]
    assert [f.rule_id for f in txt.detect(["drakkar"])[0]] == ["invented_plain:drakk"]


def test_numbers_are_not_leetspeak(invented: RulesDetector) -> None:
    assert _ids(invented, "code 14/88 here") == ["invented:14/88"]
    assert _ids(invented, "page 14 and 88") == []


def test_repeated_letters_must_match_or_be_stretched(tmp_path: Path) -> None:
    path = tmp_path / "runs.txt"
    path.write_text("#: category: hate\nzagger\n", encoding="utf-8")
    det = _load(path)
    assert _ids(det, "zagger") == ["runs:zagger"]
    assert _ids(det, "zaggggger") == ["runs:zagger"]  # stretched
    assert _ids(det, "zager") == []  # a different word (like Niger vs a slur)


# --- regexes -----------------------------------------------------------------------------------


def test_regex_on_normalised_text(invented: RulesDetector) -> None:
    text = "Z0RBS   are\nVERMIN"
    [f] = invented.detect([text])[0]
    assert f.rule_id == "invented:zorbs-are"
    assert f.span == (0, len(text))


def test_regex_on_original_text(invented: RulesDetector) -> None:
    assert _ids(invented, "he said GRAWK") == ["invented:shout"]


def test_regex_source_is_normalised_like_text() -> None:
    assert normalize_regex_source(r"\bhidden camera in the (?:locker room|bathroom)\b") == \
        r"\bhiden camera in the (?:locker rom|bathrom)\b"
    assert normalize_regex_source(r"déshabille-la (?P<name>x)\d{2,}") == r"deshabile la (?P<name>x)\d{2,}"


def test_catastrophic_regex_rejected_with_clear_message() -> None:
    with pytest.raises(BlocklistError) as err:
        load_list(FIXTURES / "bad_regex.yaml")
    msg = str(err.value)
    assert "bad_regex.yaml" in msg and "entries[2]" in msg and "nested quantifier" in msg


def test_slow_regex_refused_by_probe() -> None:
    with pytest.raises(BlocklistError, match=r"bad_regex_probe.yaml.*catastrophic backtracking"):
        load_list(FIXTURES / "bad_regex_probe.yaml")


def test_invalid_regex_rejected() -> None:
    with pytest.raises(BlocklistError, match=r"bad_syntax_regex.yaml: entries\[1\].*invalid regex"):
        load_list(FIXTURES / "bad_syntax_regex.yaml")


def test_check_regex_accepts_ordinary_patterns() -> None:
    check_regex(r"\bzorb(?:le)?s? (?:are|r) (?:pests|vermin)\b")
    check_regex(r"(?>\w+)\b")  # atomic group: not flagged as nested


# --- allow exceptions --------------------------------------------------------------------------


def test_allow_exceptions(invented: RulesDetector) -> None:
    assert _ids(invented, "squxxhorpe united") == []  # Scunthorpe-style substring exception
    assert _ids(invented, "squxx") == ["invented:quxx"]
    assert _ids(invented, "mr vrobinson") == []
    assert _ids(invented, "zorblax valley") == []  # regex allow
    assert _ids(invented, "zorblax valley and a zorblax") == ["invented:zorblax"]
    txt = _load("invented_plain.txt")
    assert txt.detect(["flimzap square"]) == [[]]
    assert [f.rule_id for f in txt.detect(["flimzap"])[0]] == ["invented_plain:flimzap"]


def test_allow_shows_in_explain(invented: RulesDetector) -> None:
    out = invented.explain("zorblax valley")
    assert out["normalized"] == "zorblax valey"
    [m] = out["matches"]
    assert m["rule_id"] == "invented:zorblax" and m["allowed_by"] == "invented:\\bzorblax (?:valley|river)\\b"


# --- formats and validation --------------------------------------------------------------------


def test_plain_text_list() -> None:
    rl = load_list(FIXTURES / "invented_plain.txt")
    assert rl.name == "invented_plain"
    assert rl.category == "extremism"
    assert [e.term for e in rl.entries] == ["flimzap", "wobbel fest", "quorbish", "drakk", r"\bsnerg(?:le)?\b"]
    assert [e.match for e in rl.entries[:4]] == ["word", "word", "substring", "prefix"]
    assert [e.term for e in rl.allow] == ["flimzap square"]


def test_plain_text_list_default_category(tmp_path: Path) -> None:
    path = tmp_path / "spam-campaign.txt"
    path.write_text("# comment\nmumbleberry\n\n", encoding="utf-8")
    det = _load(path)
    [f] = det.detect(["buy MUMBLEBERRY now"])[0]
    assert (f.category, f.rule_id) == ("blocklist", "spam-campaign:mumbleberry")


def test_action_override_exposed() -> None:
    det = _load("invented.yaml", "invented_sexual.yaml")
    assert det.list_actions == {"invented": None, "invented-sexual": "annotate"}
    [f] = det.detect(["blorpo"])[0]
    assert det.action_for(f) == "annotate"
    assert f.action is Action.ANNOTATE
    [f] = det.detect(["zorblax"])[0]
    assert f.action is None


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("bad_category.yaml", r"bad_category.yaml: category: must be one of hate"),
        ("bad_entry.yaml", r"bad_entry.yaml: entries\[2\]: unknown key\(s\) scor"),
    ],
)
def test_validation_errors_name_file_entry_and_problem(name: str, pattern: str) -> None:
    with pytest.raises(BlocklistError, match=pattern):
        load_list(FIXTURES / name)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ncategory: hate\nentries: [a, b\n", encoding="utf-8")
    with pytest.raises(BlocklistError, match=r"broken.yaml: line \d+: invalid YAML"):
        load_list(path)


def test_duplicate_list_names_rejected(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "same.txt").write_text("foo\n", encoding="utf-8")
    (tmp_path / "b" / "same.txt").write_text("bar\n", encoding="utf-8")
    with pytest.raises(BlocklistError, match="already used"):
        _load(tmp_path)


def test_folder_skips_readme_and_underscore(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# lists\n", encoding="utf-8")
    (tmp_path / "_lint").mkdir()
    (tmp_path / "_lint" / "words.txt").write_text("the\n", encoding="utf-8")
    shutil.copy(FIXTURES / "invented_plain.txt", tmp_path / "invented_plain.txt")
    det = _load(tmp_path)
    assert [rl.name for rl in det.compiled.lists] == ["invented_plain"]
    assert tmp_path in det.watched_paths() and tmp_path / "invented_plain.txt" in det.watched_paths()


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("zorblax\n", encoding="utf-8")
    a = _load(path)
    b = _load(path)
    assert a.version == b.version and a.version.startswith("sha256:")
    path.write_text("zorblax\nglimmet\n", encoding="utf-8")
    c = _load(path)
    assert c.version != a.version


def test_reload_by_new_detector_keeps_old_on_error(tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    path.write_text("name: live\ncategory: hate\nentries: [zorblax]\n", encoding="utf-8")
    current = _load(path)
    path.write_text("name: live\ncategory: hate\nentries:\n  - regex: '(a+)+'\n", encoding="utf-8")
    candidate = RulesDetector([path])
    with pytest.raises(BlocklistError):
        candidate.load()
    assert _ids(current, "zorblax") == ["live:zorblax"]  # the old one still works


# --- the shipped lists -------------------------------------------------------------------------


def _cases(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_shipped_lists_load_and_cover_categories(shipped: RulesDetector) -> None:
    cats = {rl.category for rl in shipped.compiled.lists}
    assert set(CATEGORIES) <= cats
    langs = {rl.language for rl in shipped.compiled.lists}
    assert {"en", "fr"} <= langs
    assert shipped.list_actions["en-sexual"] == "annotate"


@pytest.mark.parametrize("case", _cases("shipped_positives.jsonl"), ids=lambda c: c.get("rule") or c["category"])
def test_shipped_positive(shipped: RulesDetector, case: dict) -> None:
    findings = shipped.detect([case["text"]])[0]
    wanted = case.get("rule")
    assert any(f.category == case["category"] and (not wanted or f.rule_id == wanted) for f in findings), \
        [f.to_dict() for f in findings]


@pytest.mark.parametrize("case", _cases("shipped_negatives.jsonl"), ids=lambda c: c["text"][:30])
def test_shipped_negative(shipped: RulesDetector, case: dict) -> None:
    assert shipped.detect([case["text"]])[0] == []


# --- scale -------------------------------------------------------------------------------------


def test_hundred_thousand_terms_load_and_match(tmp_path: Path) -> None:
    rng = random.Random(4)
    letters = string.ascii_lowercase
    terms = sorted({"".join(rng.choice(letters) for _ in range(rng.randint(7, 12))) for _ in range(101_000)})
    terms = terms[:100_000]
    path = tmp_path / "big.txt"
    path.write_text("#: category: hate\n" + "\n".join(terms) + "\n", encoding="utf-8")
    det = RulesDetector([path])
    t0 = time.perf_counter()
    det.load()
    load_s = time.perf_counter() - t0
    assert det.compiled.term_count == 100_000
    probe = [terms[0], terms[50_000], terms[-1]]
    text = f"first {probe[0].upper()} then {' '.join(probe[1])} and {chr(0x200B).join(probe[2])}"
    found = {f.rule_id for f in det.detect([text])[0]}
    assert {f"big:{probe[0]}", f"big:{probe[1]}", f"big:{probe[2]}"} <= found
    print(f"100k terms loaded in {load_s:.2f}s")  # informative only: no wall-clock assertion


class _SlowRules(RulesDetector):
    """One regex that backtracks exponentially on "aaa...b" (compiled past the load-time check)."""

    def load(self) -> None:
        import regex

        from safety_filter.detectors.rules import CompiledRules, Entry, RuleList

        slow = Entry(list_name="t", category="hate", term="(a|aa)+$", rule_id="t:slow", kind="regex",
                     on="original", pattern=regex.compile("(a|aa)+$"))
        self._compiled = CompiledRules([RuleList(name="t", category="hate", path=Path("t.yaml"), entries=[slow])],
                                       regex_timeout=0.01)


def _slow_rules() -> RulesDetector:
    det = _SlowRules([])
    det.load()
    return det


def test_regex_timeout_raises_instead_of_skipping_the_rule(caplog: pytest.LogCaptureFixture) -> None:
    from safety_filter.errors import InspectionError

    det = _slow_rules()
    with caplog.at_level("WARNING"), pytest.raises(InspectionError, match="t:slow timed out"):
        det.detect(["a" * 60 + "b"])
    assert "t:slow timed out" in caplog.text
    assert det.detect(["b"]) == [[]]  # a fast text is still inspected


@pytest.mark.parametrize(("fail_mode", "action"), [("closed", Action.BLOCK), ("open", Action.ANNOTATE)])
def test_regex_timeout_applies_the_fail_mode(fail_mode: str, action: Action) -> None:
    from safety_filter.engine import Engine
    from tests.helpers import make_policy

    engine = Engine(make_policy(fail_mode=fail_mode), [_slow_rules()])
    [verdict] = engine.check_sync(["a" * 60 + "b"], "prompt")
    assert verdict.action is action
    assert verdict.error is not None and "timed out" in verdict.error


def test_regex_prefilter_literals() -> None:
    from safety_filter.detectors.rules import regex_triggers

    assert regex_triggers(r"\bzorbs are (?:vermin|pests)\b") == {"zorbs are "}
    assert regex_triggers(r"\b(?:glim|flumox)(?:es)? (?:is|are) bad\b") == {"glim", "flumox"}
    assert regex_triggers(r"\b(?:a|an) (?:x|y)\b") is None  # too short: always run
    assert regex_triggers(r"\b\w+ of \w+\b") is None  # only a stop word: always run
    assert regex_triggers(r"\p{L}+zorb") is None  # `regex`-only syntax: always run


def test_regex_prefilter_does_not_change_results(invented: RulesDetector) -> None:
    compiled = invented.compiled
    entry = next(e for e in compiled.regexes if e.rule_id == "invented:zorbs-are")
    assert entry.triggers
    assert [m.rule_id for m in compiled.match("ZORBS are pests")] == ["invented:zorbs-are"]
    assert compiled.match("pests everywhere") == []
