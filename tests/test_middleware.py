"""The middleware end to end through httpx's ASGITransport, with a fake detector."""

from __future__ import annotations

import json

import httpx
import pytest

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.audit import AuditLog

from .helpers import ChatApp, FakeDetector, chat_request, make_policy

pytestmark = pytest.mark.anyio


def build(reply: str = "Hello there, how can I help?", piece: int = 3, **policy: object):
    app = ChatApp(reply, piece)
    detector = FakeDetector()
    engine = Engine(make_policy(**policy), [detector])
    return app, detector, SafetyFilterMiddleware(app, engine=engine, audit=AuditLog(None))


def client(asgi) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://test")


async def test_allowed_response_is_byte_identical() -> None:
    app, _, filtered = build()
    async with client(app) as direct, client(filtered) as through:
        expected = await direct.post("/v1/chat/completions", json=chat_request("hi"))
        got = await through.post("/v1/chat/completions", json=chat_request("hi"))
    assert got.status_code == 200
    assert got.content == expected.content
    assert got.headers["x-safety-filter-action"] == "allow"


async def test_blocked_prompt_never_reaches_the_app() -> None:
    app, _, filtered = build()
    async with client(filtered) as http:
        response = await http.post("/v1/chat/completions", json=chat_request("tell me zzhate things"))
    assert app.calls == 0
    assert response.status_code == 400
    assert response.headers["x-safety-filter-action"] == "block"
    error = response.json()["error"]
    assert error["code"] == "content_filter"
    assert error["param"] == "prompt"
    assert error["status"] == 400
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    result = error["innererror"]["content_filter_result"]
    assert result["hate"] == {"filtered": True, "severity": "high"}
    assert set(result) >= {"hate", "extremism", "non_consensual", "sexual"}
    assert result["sexual"]["filtered"] is False


async def test_every_message_and_content_part_is_inspected() -> None:
    app, _, filtered = build()
    body = {
        "messages": [
            {"role": "system", "content": "be nice"},
            {"role": "assistant", "content": [{"type": "text", "text": "earlier zznazi turn"}]},
            {"role": "user", "content": "and now?"},
        ]
    }
    async with client(filtered) as http:
        response = await http.post("/openai/deployments/gpt/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["innererror"]["content_filter_result"]["extremism"]["filtered"] is True
    assert app.calls == 0


async def test_blocked_completion_is_withheld_with_content_filter_reason() -> None:
    _, _, filtered = build(reply="sure, here is zzhate content")
    async with client(filtered) as http:
        response = await http.post("/v1/chat/completions", json=chat_request("hi"))
    assert response.status_code == 200
    assert response.headers["x-safety-filter-action"] == "block"
    assert b"zzhate" not in response.content
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] is None
    assert choice["content_filter_results"]["hate"] == {"filtered": True, "severity": "high"}
    assert int(response.headers["content-length"]) == len(response.content)


async def test_legacy_completions_route_blocks_text_choice() -> None:
    _, _, filtered = build(reply="zzhate")
    async with client(filtered) as http:
        response = await http.post("/v1/completions", json={"prompt": "hi"})
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "content_filter" and choice["text"] == ""


async def test_annotate_adds_azure_results_without_blocking() -> None:
    _, _, filtered = build(reply="a zzsex scene")
    async with client(filtered) as http:
        response = await http.post("/v1/chat/completions", json=chat_request("write a scene"))
    assert response.headers["x-safety-filter-action"] == "annotate"
    body = response.json()
    choice = body["choices"][0]
    assert choice["message"]["content"] == "a zzsex scene"
    assert choice["content_filter_results"]["sexual"] == {"filtered": True, "severity": "medium"}
    assert body["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False


async def test_annotations_always_annotates_allowed_responses() -> None:
    _, _, filtered = build(annotations="always")
    async with client(filtered) as http:
        response = await http.post("/v1/chat/completions", json=chat_request("hi"))
    body = response.json()
    assert response.headers["x-safety-filter-action"] == "annotate"
    assert body["choices"][0]["content_filter_results"]["hate"] == {"filtered": False, "severity": "safe"}
    assert "prompt_filter_results" in body


async def test_other_routes_and_methods_pass_untouched() -> None:
    _, detector, filtered = build()
    async with client(filtered) as http:
        get = await http.get("/health")
        post = await http.post("/health", content=b"zzhate")
    assert get.text == post.text == "ok zzhate"
    assert "x-safety-filter-action" not in get.headers
    assert detector.calls == []


def sse_payloads(raw: bytes) -> list[str]:
    return [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]


async def test_allowed_stream_is_byte_identical() -> None:
    app, _, filtered = build(reply="A calm answer that goes on for a while about gardens and tea. " * 4, piece=5)
    async with client(app) as direct, client(filtered) as through:
        expected = await direct.post("/v1/chat/completions", json=chat_request("hi", stream=True))
        got = await through.post("/v1/chat/completions", json=chat_request("hi", stream=True))
    assert got.content == expected.content
    assert got.headers["x-safety-filter-action"] == "allow"


@pytest.mark.parametrize("piece", [1, 2, 7])
async def test_stream_cut_before_any_byte_of_a_split_phrase(piece: int) -> None:
    reply = "Some harmless opening words that go on for a bit. Then zzhate arrives and more after it."
    _, _, filtered = build(reply=reply, piece=piece)
    async with client(filtered) as http:
        response = await http.post("/v1/chat/completions", json=chat_request("hi", stream=True))
    payloads = sse_payloads(response.content)
    emitted = "".join(
        c.get("delta", {}).get("content", "") for p in payloads[:-1] for c in json.loads(p)["choices"]
    )
    assert reply.startswith(emitted)
    assert len(emitted) <= reply.index("zzhate")  # not one character of the phrase left
    last = json.loads(payloads[-2])["choices"][0]
    assert last["finish_reason"] == "content_filter"
    assert last["content_filter_results"]["hate"]["filtered"] is True
    assert payloads[-1] == "[DONE]"


async def test_fail_closed_refuses_prompt_when_a_detector_fails() -> None:
    app, _, filtered = build()
    async with client(filtered) as http:
        response = await http.post("/v1/chat/completions", json=chat_request("zzboom"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "content_filter_error"
    assert app.calls == 0


async def test_fail_open_lets_through_with_error_annotation() -> None:
    app, _, filtered = build(reply="the zzboom reply", fail_mode="open")
    async with client(filtered) as http:
        response = await http.post("/v1/chat/completions", json=chat_request("fine"))
    assert response.status_code == 200 and app.calls == 1
    results = response.json()["choices"][0]["content_filter_results"]
    assert results["error"]["code"] == "content_filter_error"


async def test_invalid_json_gets_a_clear_400() -> None:
    app, _, filtered = build()
    async with client(filtered) as http:
        response = await http.post(
            "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]
    assert app.calls == 0


async def test_body_over_the_limit_gets_413() -> None:
    app, _, filtered = build(limits={"max_request_bytes": 100})
    async with client(filtered) as http:
        response = await http.post("/v1/chat/completions", json=chat_request("x" * 200))
    assert response.status_code == 413
    assert app.calls == 0


async def test_history_is_not_rescored_every_turn() -> None:
    _, detector, filtered = build()
    history = [{"role": "user", "content": f"turn {i}"} for i in range(5)]
    async with client(filtered) as http:
        await http.post("/v1/chat/completions", json={"messages": history})
        await http.post("/v1/chat/completions", json={"messages": [*history, {"role": "user", "content": "new"}]})
    scored = [t for call in detector.calls for t in call]
    prompt_texts = [t for t in scored if "\n" not in t and (t.startswith("turn") or t == "new")]
    assert sorted(prompt_texts) == sorted([f"turn {i}" for i in range(5)] + ["new"])
    # runs of consecutive messages are read too; only the runs ending at the new message are new
    assert sorted(t for t in scored[-3:]) == sorted(["new", "turn 4\nnew", "turn 3\nturn 4\nnew"])
