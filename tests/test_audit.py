"""The audit trail: JSON line shape, no raw text by default, PII redaction (offline presidio)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from safety_filter.audit import REDACTION_UNAVAILABLE, AuditLog
from safety_filter.findings import Action, CategoryResult, Finding, Severity, Verdict

FIXTURES = Path(__file__).parent / "fixtures" / "audit"


def _verdict(action: Action = Action.BLOCK, error: str | None = None, evidence: str = "zorblax") -> Verdict:
    return Verdict(
        action=action,
        categories={"hate": CategoryResult(1.0, Severity.HIGH, True),
                    "sexual": CategoryResult(0.0, Severity.SAFE, False)},
        findings=(Finding("hate", 1.0, "rules", span=(10, 17), rule_id="invented:zorblax", evidence=evidence),),
        error=error,
        policy_version="1",
    )


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _pii_cases() -> list[dict]:
    return [json.loads(x) for x in (FIXTURES / "pii_texts.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]


def test_line_shape_and_no_raw_text_by_default(tmp_path: Path) -> None:
    sink = tmp_path / "audit" / "audit.jsonl"
    log = AuditLog(sink, detector_versions={"rules": "sha256:abc"})
    text = "you are a zorblax, John Smith"
    log.record(request_id="req-1", route="/v1/chat/completions", role="prompt", verdict=_verdict(),
               policy_version="1@sha256:ff", texts=[text])
    log.close()
    [line] = _lines(sink)
    assert set(line) == {"time", "request_id", "route", "role", "action", "categories", "findings",
                         "policy_version", "detector_versions"}
    assert line["time"].endswith("Z") and "T" in line["time"]
    assert (line["request_id"], line["route"], line["role"], line["action"]) == \
        ("req-1", "/v1/chat/completions", "prompt", "block")
    assert line["categories"]["hate"] == {"score": 1.0, "severity": "high", "filtered": True}
    assert line["findings"] == [{"category": "hate", "score": 1.0, "source": "rules", "rule_id": "invented:zorblax",
                                 "span": [10, 17]}]
    assert line["policy_version"] == "1@sha256:ff"
    assert line["detector_versions"] == {"rules": "sha256:abc"}
    raw = sink.read_text(encoding="utf-8")
    assert "zorblax," not in raw and "John" not in raw and "evidence" not in raw and "excerpts" not in raw


def test_allowed_verdicts_are_not_logged_unless_errored(tmp_path: Path) -> None:
    sink = tmp_path / "a.jsonl"
    log = AuditLog(sink)
    log.record(request_id="r1", route="/", role="prompt", verdict=_verdict(Action.ALLOW), policy_version="1")
    log.record(request_id="r2", route="/", role="prompt", verdict=_verdict(Action.ANNOTATE), policy_version="1")
    log.record(request_id="r3", route="/", role="completion", verdict=_verdict(Action.ALLOW, error="timeout"),
               policy_version="1")
    log.close()
    lines = _lines(sink)
    assert [x["request_id"] for x in lines] == ["r2", "r3"]
    assert lines[1]["error"] == "timeout" and lines[0]["action"] == "annotate"


def test_stderr_sink_and_disabled_sink(capsys: pytest.CaptureFixture[str]) -> None:
    AuditLog("-").record(request_id="r", route="/", role="prompt", verdict=_verdict(), policy_version="1")
    err = capsys.readouterr().err
    assert json.loads(err.splitlines()[-1])["request_id"] == "r"
    off = AuditLog(None)
    off.record(request_id="r", route="/", role="prompt", verdict=_verdict(), policy_version="1")
    off.close()
    assert capsys.readouterr().err == ""


def test_never_raises_into_the_request_path(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = AuditLog(tmp_path)  # a directory: cannot be opened for appending
    with caplog.at_level("ERROR"):
        log.record(request_id="r-err", route="/", role="prompt", verdict=_verdict(), policy_version="1")
    assert "r-err" in caplog.text


def test_thread_safe_whole_lines(tmp_path: Path) -> None:
    sink = tmp_path / "t.jsonl"
    log = AuditLog(sink)

    def worker(n: int) -> None:
        for i in range(50):
            log.record(request_id=f"{n}-{i}", route="/", role="prompt", verdict=_verdict(), policy_version="1")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    lines = _lines(sink)
    assert len(lines) == 400 and len({x["request_id"] for x in lines}) == 400


def test_excerpts_without_redaction_only_when_explicit(tmp_path: Path) -> None:
    sink = tmp_path / "raw.jsonl"
    log = AuditLog(sink, include_excerpts=True, redact=False)
    log.record(request_id="r", route="/", role="prompt", verdict=_verdict(), policy_version="1",
               texts=["hello zorblax"])
    log.close()
    [line] = _lines(sink)
    assert line["excerpts"] == ["hello zorblax"] and line["excerpts_redacted"] is False
    assert line["findings"][0]["evidence"] == "zorblax"


def test_redaction_failure_withholds_the_excerpt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safety_filter import pii

    def broken(*args: object, **kwargs: object) -> str:
        raise pii.PIIUnavailable("no presidio")

    monkeypatch.setattr(pii, "redact", broken)
    sink = tmp_path / "w.jsonl"
    log = AuditLog(sink, include_excerpts=True)
    log.record(request_id="r", route="/", role="prompt", verdict=_verdict(), policy_version="1", texts=["secret text"])
    log.close()
    [line] = _lines(sink)
    assert line["excerpts"] == [REDACTION_UNAVAILABLE]
    assert "secret" not in sink.read_text(encoding="utf-8")


@pytest.mark.anyio
async def test_redacted_excerpts_without_the_pii_extra_fail_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy asking for redacted excerpts on an install without presidio serves nothing."""
    import httpx

    from safety_filter import Engine, SafetyFilterMiddleware, pii

    from .helpers import ChatApp, FakeDetector, chat_request, make_policy

    monkeypatch.setitem(pii.SPACY_MODELS, "fr", "zz_no_such_spacy_model")
    policy = make_policy(audit={"sink": str(tmp_path / "a.jsonl"), "include_excerpts": True})
    app = ChatApp()
    filtered = SafetyFilterMiddleware(app, engine=Engine(policy, [FakeDetector()]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=filtered), base_url="http://test") as http:
        response = await http.post("/v1/chat/completions", json=chat_request("hello"))
    filtered.engine.close()
    assert response.status_code == 500 and app.calls == 0
    assert "zz_no_such_spacy_model is not installed" in response.text and "safety-filter[pii]" in response.text


@pytest.mark.parametrize("case", _pii_cases(), ids=lambda c: c["language"] + ":" + c["text"][:20])
def test_excerpts_are_redacted(tmp_path: Path, case: dict) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    sink = tmp_path / "r.jsonl"
    log = AuditLog(sink, include_excerpts=True)
    log.record(request_id="r", route="/", role="prompt", verdict=_verdict(evidence=case["raw"][0]),
               policy_version="1", texts=[case["text"]])
    log.close()
    [line] = _lines(sink)
    raw = sink.read_text(encoding="utf-8")
    for secret in case["raw"]:
        assert secret not in raw, line
    for tag in case["tags"]:
        assert f"<{tag}>" in line["excerpts"][0], line["excerpts"][0]
    assert line["excerpts_redacted"] is True


def test_find_people_spans() -> None:
    from safety_filter import pii

    text = "Yesterday Barack Obama met Angela Merkel in Berlin."
    spans = pii.find_people(text, "en")
    assert [text[s:e] for s, e in spans] == ["Barack Obama", "Angela Merkel"]
    assert pii.guess_language("Bonjour, je suis très content de vous voir") == "fr"
    assert pii.guess_language("Hello, I am glad to see you") == "en"


def test_presidio_loads_and_redacts_with_no_network() -> None:
    # a fresh interpreter where any socket connection is recorded and refused
    code = r"""
import socket, sys
attempts = []
def refuse(self, address, *a, **k):
    attempts.append(address)
    raise OSError("network disabled by test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
from safety_filter import pii
out = pii.redact("Contact Marie Dupont at marie.dupont@example.fr or +33 6 12 34 56 78.", "fr")
print(out)
print("ATTEMPTS", attempts)
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False,
                          cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr
    assert "ATTEMPTS []" in proc.stdout
    assert "marie.dupont@example.fr" not in proc.stdout and "<EMAIL_ADDRESS>" in proc.stdout
    assert "<PHONE_NUMBER>" in proc.stdout
