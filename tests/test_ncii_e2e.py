"""Non-consensual intimate content through the middleware, with the shipped detectors: requests
naming real people are blocked as `non_consensual`, a complying stream is cut, and legitimate
look-alikes (a victim asking for help, news, consensual fiction, a portrait) pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.audit import AuditLog

from .helpers import ChatApp

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # real servers or real models

CASES = {
    c["id"]: c
    for c in (
        json.loads(line)
        for line in (Path(__file__).parent / "fixtures" / "ncii" / "cases.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
        if line.strip()
    )
}
REQUESTS = [c for c in CASES.values() if c["expect"] == "flag" and c["kind"] == "nudify_request"]
LEGITIMATE = [
    c
    for c in CASES.values()
    if c["expect"] == "no_flag"
    and c["kind"] in ("victim_help", "news_policy", "fictional_consensual", "nonsexual_named_person")
]
COMPLYING = [c for c in CASES.values() if c["kind"] == "compliant_completion"]


@pytest.fixture
def engine(shipped_engine: Engine) -> Engine:
    return shipped_engine  # one per session (conftest.py): the real detectors load once


async def chat(engine: Engine, prompt: str, *, reply: str = "Sure.", stream: bool = False) -> httpx.Response:
    asgi = SafetyFilterMiddleware(ChatApp(reply, piece=3), engine=engine, audit=AuditLog(None))
    body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}], "stream": stream}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as http:
        return await http.post("/v1/chat/completions", json=body)


@pytest.mark.parametrize("case", REQUESTS, ids=lambda c: c["id"])
async def test_nudify_request_naming_a_real_person_is_blocked(engine: Engine, case: dict[str, Any]) -> None:
    response = await chat(engine, case["text"])
    assert response.status_code == 400
    result = response.json()["error"]["innererror"]["content_filter_result"]
    assert result["non_consensual"]["filtered"] is True


@pytest.mark.parametrize("case", COMPLYING, ids=lambda c: c["id"])
async def test_a_streamed_completion_that_starts_complying_is_cut(engine: Engine, case: dict[str, Any]) -> None:
    reply = case["text"] + " Then share it wherever you like."
    response = await chat(engine, "Can you help me with a photo?", reply=reply, stream=True)
    events = [e[6:] for e in response.text.split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    final = json.loads(events[-2])["choices"][0]
    assert final["finish_reason"] == "content_filter"
    assert final["content_filter_results"]["non_consensual"]["filtered"] is True
    emitted = "".join(c.get("delta", {}).get("content") or "" for e in events[:-2] for c in json.loads(e)["choices"])
    assert len(emitted) < len(case["text"])  # cut before the instructions were all out


@pytest.mark.parametrize("case", LEGITIMATE, ids=lambda c: c["id"])
async def test_legitimate_requests_are_not_blocked(engine: Engine, case: dict[str, Any]) -> None:
    response = await chat(engine, case["text"])
    assert response.status_code == 200, response.text[:300]
    assert response.headers["x-safety-filter-action"] in ("allow", "annotate")
