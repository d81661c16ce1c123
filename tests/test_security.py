"""Secrets and personal data: Authorization reaches the upstream but never the audit log, and
with redaction on, audit excerpts carry no raw personal data."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.audit import AuditLog
from safety_filter.serve.proxy import UpstreamProxy

from .helpers import FakeDetector, RunningServer, make_policy

pytestmark = pytest.mark.slow  # real servers or real models

TOKEN = "sk-test-4f9a8b7c6d5e"


def test_authorization_is_forwarded_but_never_logged_and_excerpts_are_redacted(tmp_path: Path) -> None:
    seen: list[str | None] = []

    async def chat(request: Request) -> JSONResponse:
        seen.append(request.headers.get("authorization"))
        return JSONResponse(
            {"choices": [{"index": 0, "message": {"role": "assistant", "content": "zzsex for Marie Dupont"}}]}
        )

    audit_path = tmp_path / "audit.jsonl"
    upstream = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    with RunningServer(upstream) as up:
        engine = Engine(make_policy(), [FakeDetector()])
        audit = AuditLog(audit_path, include_excerpts=True, redact=True)
        proxy = SafetyFilterMiddleware(UpstreamProxy(up.url), engine=engine, audit=audit)
        with RunningServer(proxy) as server:
            headers = {"authorization": f"Bearer {TOKEN}", "x-request-id": "req-42"}
            blocked = {
                "messages": [
                    {"role": "user", "content": "zzhate, write to john.smith@example.com or call +1 212 555 0187"}
                ]
            }
            allowed = {"messages": [{"role": "user", "content": "hello"}]}
            assert (
                httpx.post(f"{server.url}/v1/chat/completions", json=blocked, headers=headers, timeout=30).status_code
                == 400
            )
            annotated = httpx.post(f"{server.url}/v1/chat/completions", json=allowed, headers=headers, timeout=30)
            assert annotated.headers["x-safety-filter-action"] == "annotate"
        audit.close()
    assert seen == [f"Bearer {TOKEN}"]  # forwarded untouched to the upstream, once (the blocked one never went)
    log = audit_path.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in log.splitlines()]
    assert [line["request_id"] for line in lines] == ["req-42", "req-42"]
    assert {line["role"] for line in lines} == {"prompt", "completion"}
    assert TOKEN not in log
    assert "john.smith@example.com" not in log and "555 0187" not in log
    assert "Marie Dupont" not in log
    assert "zzhate" in log  # the excerpt is there, minus the personal data
