"""`safety-filter blocklist lint|test|explain`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from safety_filter.blocklist_cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "rules"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- lint ----------------------------------------------------------------------------------------


def test_lint_clean_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "blocklist", "lint", str(FIXTURES / "invented.yaml"))
    assert code == 0, out
    assert "no problems" in err


def test_shipped_lists_lint_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "blocklist", "lint", "default")
    assert code == 0, out


def test_lint_finds_every_problem(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "blocklist", "lint", "--json", str(FIXTURES / "lint_problems.yaml"))
    assert code == 1
    problems = json.loads(out)["problems"]
    by_check: dict[str, list[dict]] = {}
    for p in problems:
        by_check.setdefault(p["check"], []).append(p)
    assert {"duplicate", "merged", "shadowed", "over-broad", "short", "regex"} <= set(by_check), by_check
    assert any("zorblax" in p["message"] for p in by_check["duplicate"])
    assert any("'z0rblax' and 'zorblax'" in p["message"] for p in by_check["merged"])
    assert any(p["rule_id"] == "lint-problems:glimmet fraud" for p in by_check["shadowed"])
    assert any(p["rule_id"] == "lint-problems:the" for p in by_check["over-broad"])
    assert any(p["rule_id"] == "lint-problems:ab" for p in by_check["short"])
    assert any("nested quantifier" in p["message"] for p in by_check["regex"])


def test_lint_substring_entry_over_broad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    words = tmp_path / "words.txt"
    words.write_text("classic\nglass\nbook\n", encoding="utf-8")
    lst = tmp_path / "l.txt"
    lst.write_text("*las*\nzorblax\n", encoding="utf-8")
    code, out, _ = _run(capsys, "blocklist", "lint", "--words", str(words), str(lst))
    assert code == 1
    assert "[over-broad] l:las" in out and "classic" in out and "glass" in out


def test_lint_ignore_marks_a_reviewed_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lst = tmp_path / "reviewed.yaml"
    lst.write_text("name: r\ncategory: hate\nentries:\n  - {term: the, lint_ignore: [over-broad]}\n", encoding="utf-8")
    code, out, _ = _run(capsys, "blocklist", "lint", str(lst))
    assert code == 0, out


def test_lint_unloadable_file_is_a_problem(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "blocklist", "lint", str(FIXTURES / "bad_category.yaml"))
    assert code == 1
    assert "[load]" in out and "category" in out


def test_lint_missing_path_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "blocklist", "lint", "/nonexistent/list.yaml")
    assert code == 2
    assert "no such list" in err


# --- test ----------------------------------------------------------------------------------------


def test_test_reports_precision_recall_and_false_positives(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "blocklist", "test", str(FIXTURES / "invented.yaml"),
                        str(FIXTURES / "invented_plain.txt"), "--data", str(FIXTURES / "labelled.jsonl"), "--json")
    assert code == 0
    report = json.loads(out)
    # positives: 4 hate caught + extremism caught, 1 hate missed; negatives: "ploom" is a false positive
    assert (report["tp"], report["fp"], report["fn"], report["tn"]) == (5, 1, 1, 3)
    assert report["precision"] == round(5 / 6, 4)
    assert report["recall"] == round(5 / 6, 4)
    [fp] = report["false_positives"]
    assert fp["line"] == 7
    assert fp["findings"][0]["rule_id"] == "invented:ploom"
    assert fp["findings"][0]["span"] == [0, 5]
    assert report["per_category"]["extremism"]["recall"] == 1.0


def test_test_human_output_and_thresholds(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["blocklist", "test", str(FIXTURES / "invented.yaml"), "--data", str(FIXTURES / "labelled.jsonl")]
    code, out, _ = _run(capsys, *argv)
    assert code == 0
    assert "precision:" in out and "false positives:" in out and "invented:ploom" in out and "(0, 5)" in out
    code, _, _ = _run(capsys, *argv, "--min-precision", "0.99")
    assert code == 1


def test_test_bad_data_is_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "x"}\n', encoding="utf-8")
    code, _, err = _run(capsys, "blocklist", "test", str(FIXTURES / "invented.yaml"), "--data", str(data))
    assert code == 2
    assert "line 1" in err and "label" in err


def test_test_load_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "blocklist", "test", str(FIXTURES / "bad_regex.yaml"),
                        "--data", str(FIXTURES / "labelled.jsonl"))
    assert code == 2
    assert "bad_regex.yaml" in err and "nested quantifier" in err


# --- explain -------------------------------------------------------------------------------------


def test_explain_shows_entries_spans_and_normalised_form(capsys: pytest.CaptureFixture[str]) -> None:
    text = "so Z.0.R.B.L.A.X and zorblax valley"
    code, out, _ = _run(capsys, "blocklist", "explain", text, "--list", str(FIXTURES / "invented.yaml"), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["normalized"] == "so zorblax and zorblax valey"
    first, second = result["matches"]
    assert first["rule_id"] == "invented:zorblax" and first["span"] == [3, 16] and first["evidence"] == "Z.0.R.B.L.A.X"
    assert first["normalized_evidence"] == "zorblax" and first["allowed_by"] is None
    assert second["allowed_by"] is not None


def test_explain_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "blocklist", "explain", "nothing to see", "--list", str(FIXTURES / "invented.yaml"))
    assert code == 0
    assert "normalised: 'nothing to se'" in out and "no entry fired" in out


def test_explain_with_shipped_lists(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "blocklist", "explain", "Scunthorpe and kill -9 the python process")
    assert code == 0
    assert "no entry fired" in out


def test_usage_error_exit_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["blocklist", "frobnicate"])
    assert exc.value.code == 2


def test_registered_on_the_main_cli() -> None:
    # the lead's `safety-filter` command registers the same subcommands
    proc = subprocess.run([sys.executable, "-m", "safety_filter.blocklist_cli", "blocklist", "lint",
                           str(FIXTURES / "lint_problems.yaml")], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "[duplicate]" in proc.stdout
