"""The adversarial set (tests/fixtures/adversarial/): evasions of the shipped detectors, sent the
ways an attacker would send them. Every case must be caught; known gaps are listed in README.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.audit import AuditLog
from safety_filter.text.sentences import sentence_spans

from .helpers import ChatApp

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # real servers or real models

PADDING = "The weather was mild and the garden needed water, so we spent the afternoon outside. "
CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "fixtures" / "adversarial" / "bypass.jsonl")
    .read_text(encoding="utf-8")
    .splitlines()
    if line.strip()
]


def text_of(case: dict[str, Any]) -> str:
    pad = PADDING * (case.get("padding", 0) // len(PADDING))
    return pad + case["text"] + pad


@pytest.fixture
def engine(shipped_engine: Engine) -> Engine:
    return shipped_engine  # one per session (conftest.py): the real detectors load once


def filtered(engine: Engine, reply: str = "ok", piece: int = 3) -> tuple[ChatApp, SafetyFilterMiddleware]:
    app = ChatApp(reply, piece)
    return app, SafetyFilterMiddleware(app, engine=engine, audit=AuditLog(None))


async def post(asgi: Any, content: bytes) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as http:
        return await http.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"})


def escaped(text: str) -> bytes:
    """JSON with every character written as a \\u escape."""
    inner = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else json.dumps(c)[1:-1] for c in text)
    return ('{"messages": [{"role": "user", "content": "' + inner + '"}]}').encode()


WAYS = {
    "user_message": lambda t: json.dumps({"messages": [{"role": "user", "content": t}]}).encode(),
    "unicode_escapes": escaped,
    "content_part": lambda t: json.dumps(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:,"}}, {"type": "text", "text": t}],
                }
            ]
        }
    ).encode(),
    "system_message": lambda t: json.dumps(
        {"messages": [{"role": "system", "content": t}, {"role": "user", "content": "hi"}]}
    ).encode(),
    "tool_message": lambda t: json.dumps({"messages": [{"role": "tool", "tool_call_id": "c1", "content": t}]}).encode(),
}


@pytest.mark.parametrize("case", CASES, ids=[c["technique"] for c in CASES])
@pytest.mark.parametrize("way", list(WAYS))
async def test_evasion_in_a_prompt_is_blocked(engine: Engine, case: dict[str, Any], way: str) -> None:
    app, asgi = filtered(engine)
    response = await post(asgi, WAYS[way](text_of(case)))
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]["innererror"]["content_filter_result"][case["category"]]["filtered"] is True
    assert app.calls == 0


@pytest.mark.parametrize("case", [c for c in CASES if not c.get("padding")], ids=lambda c: c["technique"])
async def test_evasion_in_a_completion_is_withheld(engine: Engine, case: dict[str, Any]) -> None:
    _, asgi = filtered(engine, reply=case["text"])
    response = await post(asgi, WAYS["user_message"]("Tell me something."))
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["content_filter_results"][case["category"]]["filtered"] is True


async def test_a_phrase_split_at_every_position_never_leaks(engine: Engine) -> None:
    opening = "Here is a long and perfectly calm introduction to the answer you asked for. "
    phrase = "Heil Hitler"
    reply = opening + phrase + ", and the rest of the answer."
    for cut in range(len(opening) - 5, len(opening) + len(phrase) + 1):
        for piece in (1, 4):
            pieces = [reply[:cut][i : i + piece] for i in range(0, cut, piece)] + [reply[cut:]]
            app = ChatApp(reply)
            app.chunks = lambda chat, pieces=pieces: [  # type: ignore[method-assign]
                f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': p}}]})}\n\n".encode() for p in pieces
            ] + [b"data: [DONE]\n\n"]
            asgi = SafetyFilterMiddleware(app, engine=engine, audit=AuditLog(None))
            response = await post(
                asgi, json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()
            )
            emitted = "".join(
                c.get("delta", {}).get("content") or ""
                for e in response.text.split("\n\n")
                if e.startswith("data: {")
                for c in json.loads(e[6:])["choices"]
            )
            assert "Heil"[:2] not in emitted[len(opening) - 5 :], (cut, piece, emitted)
            assert response.text.endswith("data: [DONE]\n\n")
            assert (
                '"finish_reason": "content_filter"' in response.text
                or '"finish_reason":"content_filter"' in response.text
            )


def _sentences_the_model_catches() -> list[str]:
    """One-sentence fixtures that the classifier, not a rule list, catches (tests/fixtures/obfuscation)."""
    path = Path(__file__).parent / "fixtures" / "obfuscation" / "harmful.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["text"] for r in rows if r["detector"] == "classifier" and len(sentence_spans(r["text"])) == 1]


async def test_benign_text_before_a_harmful_sentence_does_not_hide_it(engine: Engine) -> None:
    """Dilution: two sentences of benign text before a sentence the stack blocks alone, in a prompt
    and in a completion (JSON and streamed): blocked, withheld, cut, as the sentence alone is."""
    sentences = _sentences_the_model_catches()
    verdicts = engine.check_sync(sentences, "prompt")
    blocked_alone = [t for t, v in zip(sentences, verdicts, strict=True) if v.action == "block"]
    assert len(blocked_alone) >= 8, sentences
    for sentence in blocked_alone:
        hidden = PADDING * 2 + sentence
        app, asgi = filtered(engine)
        response = await post(asgi, WAYS["user_message"](hidden))
        assert response.status_code == 400 and app.calls == 0, (sentence, response.text[:200])
        _, asgi = filtered(engine, reply=hidden)
        choice = (await post(asgi, WAYS["user_message"]("Tell me something."))).json()["choices"][0]
        assert choice["finish_reason"] == "content_filter", sentence
        stream_request = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
        streamed = await post(asgi, json.dumps(stream_request).encode())
        emitted = "".join(
            c.get("delta", {}).get("content") or ""
            for e in streamed.text.split("\n\n")
            if e.startswith("data: {")
            for c in json.loads(e[6:])["choices"]
        )
        assert sentence[-12:] not in emitted and "content_filter" in streamed.text, (sentence, emitted)
