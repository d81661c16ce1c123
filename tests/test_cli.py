"""The command line, run as a user runs it, on the shipped policy, lists and model."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from safety_filter.cli import main, scan_jsonl
from safety_filter.engine import Engine

FIXTURES = Path(__file__).parent / "fixtures"
TEXTS = json.loads((FIXTURES / "e2e_texts.json").read_text(encoding="utf-8"))


@pytest.fixture
def engine(shipped_engine: Engine) -> Engine:
    return shipped_engine  # one per session (conftest.py): the real detectors load once


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safety_filter", *args], input=stdin, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_scan_prints_one_verdict_with_all_categories() -> None:
    result = run("scan", TEXTS["extremist_en"])
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["action"] == "block"
    assert set(verdict["categories"]) >= {"hate", "extremism", "non_consensual", "sexual"}
    assert verdict["categories"]["extremism"]["filtered"] is True
    assert all(set(c) == {"score", "severity", "filtered"} for c in verdict["categories"].values())
    assert verdict["findings"]


@pytest.mark.slow
def test_scan_reads_stdin_and_exits_zero_on_allow() -> None:
    result = run("scan", "--role", "completion", stdin=TEXTS["safe_en"])
    assert result.returncode == 0
    assert json.loads(result.stdout)["action"] == "allow"


@pytest.mark.slow
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


@pytest.mark.slow
def test_scan_jsonl_from_stdin_via_the_command() -> None:
    stdin = (
        "\n".join([json.dumps({"text": TEXTS["safe_en"]}), "oops", json.dumps({"text": TEXTS["extremist_en"]})]) + "\n"
    )
    result = run("scan", "--jsonl", stdin=stdin)
    assert result.returncode == 0, result.stderr
    actions = [json.loads(line).get("action", "error") for line in result.stdout.splitlines()]
    assert actions == ["allow", "error", "block"]


@pytest.mark.slow
def test_extra_blocklist_on_the_command_line(tmp_path: Path) -> None:
    extra = tmp_path / "campaign.txt"
    extra.write_text("# a new code word\nblorptastic\n")
    result = run("scan", "--blocklist", str(extra), "what does blorptastic mean")
    verdict = json.loads(result.stdout)
    assert verdict["action"] == "block"
    assert any(f.get("rule_id", "").startswith("campaign") for f in verdict["findings"])


@pytest.mark.slow
def test_invalid_policy_fails_with_a_clear_message(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("categories:\n  hate:\n    prompt: {threshold: 2}\n")
    assert main(["scan", "--policy", str(policy), "hello"]) == 2
    result = run("scan", "--policy", str(policy), "hello")
    assert result.returncode == 2
    assert str(policy) in result.stderr and "categories.hate.prompt.threshold" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
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
    report = json.loads(report_path.read_text())  # written as JSON: it parses back
    assert report["n"] == 4 and report["data"] == str(data)
    overall = report["overall"]
    extremism = overall["categories"]["extremism"]
    assert (extremism["support"], extremism["tp"], extremism["fp"], extremism["fn"]) == (2, 2, 0, 0)
    assert extremism["recall"] == 1.0 and extremism["auprc"] == 1.0
    assert overall["harmful"] == {"n": 2, "block_rate": 1.0, "flag_rate": 1.0}
    assert overall["benign"] == {"n": 2, "false_block_rate": 0.0, "false_flag_rate": 0.0}
    assert {lang: block["n"] for lang, block in report["by_lang"].items()} == {"en": 2, "fr": 2}


# -- usage errors: one clear line (or the subcommand's own usage), exit 2, never a traceback ------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from safety_filter import __version__

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"safety-filter {__version__}"


@pytest.mark.parametrize("command,own_flag", [("serve", "--upstream"), ("scan", "--jsonl"), ("eval", "--report")])
def test_unknown_flag_prints_the_subcommands_usage(
    command: str, own_flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--no-such-flag", *(["data.jsonl"] if command == "eval" else [])])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"usage: safety-filter {command}" in err and own_flag in err
    assert "unrecognized arguments: --no-such-flag" in err


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_a_bad_port_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", port])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --port" in err and "not a port number" in err and "Traceback" not in err


def test_serve_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 8000)" in out and "(default: 127.0.0.1)" in out and "(default: 120.0)" in out
    assert "(default: None)" not in out


def test_eval_on_a_missing_file_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.jsonl"
    assert main(["eval", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"safety-filter: error: {missing}: no such file or directory"


def test_a_missing_blocklist_or_policy_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--blocklist", str(tmp_path / "gone.txt"), "hello"]) == 2
    assert capsys.readouterr().err.startswith(
        f"safety-filter: error: blocklist file not found: {tmp_path / 'gone.txt'}"
    )
    assert main(["scan", "--policy", str(tmp_path / "policy.yaml"), "hello"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("safety-filter: error: ") and "policy.yaml" in err and "Traceback" not in err


@pytest.mark.slow
def test_serve_on_a_busy_port_fails_before_loading_anything() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--port", str(port))
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"safety-filter: error: cannot listen on 127.0.0.1:{port}: the port is already in use"
    )
    assert "loading detectors" not in result.stderr and "Try it" not in result.stderr  # no banner


@pytest.mark.slow
def test_serve_workers_runs_each_worker_with_its_own_engine(tmp_path: Path) -> None:
    import signal
    import time

    import httpx
    import yaml

    from safety_filter.resources import default_policy_path

    from .helpers import free_port

    data = yaml.safe_load(default_policy_path().read_text())
    data["detectors"]["classifier"]["enabled"] = False  # rules only: two model copies would be slow here
    data["detectors"]["ncii"]["enabled"] = False
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(data))
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "safety_filter",
        "serve",
        "--workers",
        "2",
        "--port",
        str(port),
        "--policy",
        str(policy),
    ]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "serve --workers did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/safety-filter/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        request = {"model": "demo", "messages": [{"role": "user", "content": "demo: blocked"}]}
        answers = [
            httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=request, timeout=30) for _ in range(4)
        ]
        assert all(a.status_code == 200 and a.headers["x-safety-filter-action"] == "block" for a in answers)
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=60)
    assert len(set(re.findall(r"Started server process \[(\d+)\]", err))) == 2, err
    assert "Traceback" not in err
