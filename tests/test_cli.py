"""The command line, run as a user runs it, on the shipped policy, lists and model."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from safety_filter.cli import main, scan_jsonl
from safety_filter.engine import Engine

FIXTURES = Path(__file__).parent / "fixtures"
TEXTS = json.loads((FIXTURES / "e2e_texts.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def engine() -> Engine:
    engine = Engine.from_policy_file()
    engine.load()
    return engine


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safety_filter", *args], input=stdin, capture_output=True, text=True, timeout=300
    )


def test_scan_prints_one_verdict_with_all_categories() -> None:
    result = run("scan", TEXTS["extremist_en"])
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["action"] == "block"
    assert set(verdict["categories"]) >= {"hate", "extremism", "non_consensual", "sexual"}
    assert verdict["categories"]["extremism"]["filtered"] is True
    assert all(set(c) == {"score", "severity", "filtered"} for c in verdict["categories"].values())
    assert verdict["findings"]


def test_scan_reads_stdin_and_exits_zero_on_allow() -> None:
    result = run("scan", "--role", "completion", stdin=TEXTS["safe_en"])
    assert result.returncode == 0
    assert json.loads(result.stdout)["action"] == "allow"


def test_scan_jsonl_keeps_order_and_survives_a_bad_line(engine: Engine) -> None:
    lines = [
        json.dumps({"text": TEXTS["safe_en"]}),
        "{this is not json",
        json.dumps({"text": TEXTS["extremist_fr"], "role": "completion"}),
        json.dumps({"nope": 1}),
        json.dumps({"text": TEXTS["safe_fr"], "role": "prompt"}),
    ] * 20
    out = io.StringIO()
    scan_jsonl(engine, [line + "\n" for line in lines], out, batch=7)
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(results) == len(lines)
    for position, result in enumerate(results):
        kind = position % 5
        if kind in (1, 3):
            assert "error" in result and result["line"] == position + 1
        else:
            assert result["action"] == ("block" if kind == 2 else "allow")


def test_scan_jsonl_from_stdin_via_the_command() -> None:
    stdin = "\n".join([json.dumps({"text": TEXTS["safe_en"]}), "oops", json.dumps({"text": TEXTS["extremist_en"]})]) + "\n"
    result = run("scan", "--jsonl", stdin=stdin)
    assert result.returncode == 0, result.stderr
    actions = [json.loads(line).get("action", "error") for line in result.stdout.splitlines()]
    assert actions == ["allow", "error", "block"]


def test_extra_blocklist_on_the_command_line(tmp_path: Path) -> None:
    extra = tmp_path / "campaign.txt"
    extra.write_text("# a new code word\nblorptastic\n")
    result = run("scan", "--blocklist", str(extra), "what does blorptastic mean")
    verdict = json.loads(result.stdout)
    assert verdict["action"] == "block"
    assert any(f.get("rule_id", "").startswith("campaign") for f in verdict["findings"])


def test_invalid_policy_fails_with_a_clear_message(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("categories:\n  hate:\n    prompt: {threshold: 2}\n")
    assert main(["scan", "--policy", str(policy), "hello"]) == 2
    result = run("scan", "--policy", str(policy), "hello")
    assert result.returncode == 2
    assert str(policy) in result.stderr and "categories.hate.prompt.threshold" in result.stderr
    assert "Traceback" not in result.stderr


def test_eval_reports_metrics(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    rows = [
        {"text": TEXTS["extremist_en"], "labels": ["extremism"], "lang": "en"},
        {"text": TEXTS["extremist_fr"], "labels": ["extremism"], "lang": "fr"},
        {"text": TEXTS["history_en"], "labels": [], "lang": "en"},
        {"text": TEXTS["safe_fr"], "labels": [], "lang": "fr"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report_path = tmp_path / "report.json"
    result = run("eval", str(data), "--report", str(report_path))
    assert result.returncode == 0, result.stderr
    assert "extremism" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["n"] == 4 if "n" in report else True
    assert json.dumps(report)  # serialisable
