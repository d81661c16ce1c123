"""Ollama's native API end to end: the official `ollama` client through a real uvicorn running
serve's stack in front of a scripted upstream, and through the middleware in-process; NDJSON
streams (on by default), every request and response field, and refused unreadable input.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import ollama
import pytest

from safety_filter.serve.proxy import UpstreamProxy

from .helpers import RunningServer
from .test_attack_surface import MARK, ScriptedUpstream, filtered, raw_http

pytestmark = pytest.mark.slow  # real servers or real models

NDJSON = b"application/x-ndjson"
STAMP = "2026-01-01T00:00:00Z"
CHAT = {
    "model": "m",
    "created_at": STAMP,
    "message": {"role": "assistant", "content": "Happy to help."},
    "done": True,
    "done_reason": "stop",
    "eval_count": 4,
}
# Deliberately unusual spacing: an allowed answer must arrive byte for byte.
CHAT_BYTES = json.dumps(CHAT, indent=1).encode()
SPLIT = ("Sure, here it is: zz", "ha", "te and more words.")


def lines(*parts: dict[str, Any]) -> list[bytes]:
    return [json.dumps(part).encode() + b"\n" for part in parts]


def chat_stream(*pieces: str, field: str = "content") -> list[bytes]:
    parts = [
        {"model": "m", "created_at": STAMP, "message": {"role": "assistant", "content": "", field: p}, "done": False}
        for p in pieces
    ]
    return lines(
        *parts,
        {
            "model": "m",
            "created_at": STAMP,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
        },
    )


def generate_stream(*pieces: str, field: str = "response") -> list[bytes]:
    parts = [{"model": "m", "created_at": STAMP, "response": "", field: p, "done": False} for p in pieces]
    return lines(
        *parts,
        {"model": "m", "created_at": STAMP, "response": "", "done": True, "done_reason": "stop", "context": [1, 2]},
    )


@pytest.fixture(scope="module")
def stack():  # type: ignore[no-untyped-def]
    upstream = ScriptedUpstream()
    with RunningServer(upstream) as up, RunningServer(filtered(UpstreamProxy(up.url, timeout=5), proxy=True)) as front:
        yield upstream, front


@pytest.fixture
def upstream(stack):  # type: ignore[no-untyped-def]
    scripted, _ = stack
    scripted.received.clear()
    scripted.script([CHAT_BYTES])
    return scripted


@pytest.fixture(params=["uvicorn", "in-process"])
async def env(request, stack, anyio_backend):  # type: ignore[no-untyped-def]
    """(upstream, client) through serve on uvicorn, or through the middleware in-process."""
    if request.param == "uvicorn":
        upstream, front = stack
        upstream.received.clear()
        client = ollama.AsyncClient(host=front.url)
    else:
        upstream = ScriptedUpstream()
        client = ollama.AsyncClient(host="http://test", transport=httpx.ASGITransport(app=filtered(upstream)))
    upstream.script([CHAT_BYTES])
    yield upstream, client
    await client._client.aclose()


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.mark.anyio
async def test_allowed_chat_arrives_byte_for_byte(env) -> None:  # type: ignore[no-untyped-def]
    upstream, client = env
    reply = await client.chat(model="m", messages=user("hello"), stream=False)
    assert reply.message.content == "Happy to help." and reply.done_reason == "stop"
    events = chat_stream("Happy ", "to ", "help.")
    upstream.script(events, NDJSON)
    parts = [part async for part in await client.chat(model="m", messages=user("hello"), stream=True)]
    assert "".join(p.message.content or "" for p in parts) == "Happy to help." and parts[-1].done_reason == "stop"


def test_allowed_answers_are_byte_for_byte_and_streams_are_the_default(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    status, headers, body = raw_http(
        front.port, "POST", "/api/chat", json.dumps({"model": "m", "messages": user("hi"), "stream": False}).encode()
    )
    assert (status, body, headers["x-safety-filter-action"]) == (200, CHAT_BYTES, "allow")
    events = chat_stream("Happy ", "to ", "help.")
    upstream.script(events, NDJSON)
    status, _, body = raw_http(
        front.port, "POST", "/api/chat", json.dumps({"model": "m", "messages": user("hi")}).encode()
    )
    assert body == b"".join(events)
    upstream.script(chat_stream(*SPLIT), NDJSON)  # no "stream" key: Ollama streams, so it is guarded as one
    status, _, body = raw_http(
        front.port, "POST", "/api/chat", json.dumps({"model": "m", "messages": user("hi")}).encode()
    )
    assert b"zz" not in body and json.loads(body.splitlines()[-1])["done_reason"] == "content_filter"


@pytest.mark.anyio
@pytest.mark.parametrize("streamed", [False, True])
async def test_blocked_prompt_raises_response_error_and_never_reaches_upstream(env, streamed: bool) -> None:  # type: ignore[no-untyped-def]
    upstream, client = env
    with pytest.raises(ollama.ResponseError) as caught:
        answer = await client.chat(model="m", messages=user(f"say {MARK}"), stream=streamed)
        if streamed:
            [part async for part in answer]
    assert caught.value.status_code == 400 and "hate" in caught.value.error
    assert upstream.received == []


@pytest.mark.anyio
async def test_blocked_output_is_withheld_with_a_content_filter_done_reason(env) -> None:  # type: ignore[no-untyped-def]
    upstream, client = env
    upstream.script(
        [json.dumps({**CHAT, "message": {"role": "assistant", "content": f"ok {MARK}", "thinking": "hmm"}}).encode()]
    )
    reply = await client.chat(model="m", messages=user("hello"), stream=False)
    assert reply.message.content == "" and reply.message.thinking is None
    assert reply.done and reply.done_reason == "content_filter"


@pytest.mark.anyio
async def test_stream_cut_leaks_no_byte_of_a_marker_split_across_lines(env) -> None:  # type: ignore[no-untyped-def]
    upstream, client = env
    upstream.script(chat_stream(*SPLIT), NDJSON)
    parts = [part async for part in await client.chat(model="m", messages=user("hello"), stream=True)]
    assert "zz" not in "".join(p.message.content or "" for p in parts)
    assert parts[-1].done and parts[-1].done_reason == "content_filter"


@pytest.mark.anyio
async def test_generate_streamed_and_not(env) -> None:  # type: ignore[no-untyped-def]
    upstream, client = env
    upstream.script(generate_stream(*SPLIT), NDJSON)
    parts = [part async for part in await client.generate(model="m", prompt="hello", stream=True)]
    assert "zz" not in "".join(p.response or "" for p in parts) and parts[-1].done_reason == "content_filter"
    upstream.script(
        [
            json.dumps(
                {"model": "m", "created_at": STAMP, "response": f"a {MARK}", "done": True, "context": [5, 6]}
            ).encode()
        ]
    )
    reply = await client.generate(model="m", prompt="hello", stream=False)
    assert reply.response == "" and reply.context is None and reply.done_reason == "content_filter"


# -- every field, through serve on uvicorn ----------------------------------------------------

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Looks up.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}
CHAT_FIELDS: dict[str, dict[str, Any]] = {
    "content": {"messages": user(MARK)},
    "system message": {"messages": [{"role": "system", "content": MARK}, *user("hi")]},
    "assistant history": {"messages": [*user("hi"), {"role": "assistant", "content": MARK}, *user("go on")]},
    "tool_calls": {
        "messages": [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "lookup", "arguments": {"q": MARK}}}],
            },
            *user("go on"),
        ]
    },
    "tool result": {"messages": [{"role": "tool", "content": MARK, "tool_name": "lookup"}]},
    "thinking": {"messages": [{"role": "assistant", "content": "ok", "thinking": MARK}, *user("go on")]},
    "tool description": {
        "messages": user("hi"),
        "tools": [{**TOOL, "function": {**TOOL["function"], "description": MARK}}],
    },
    "tool schema property name": {
        "messages": user("hi"),
        "tools": [{**TOOL, "function": {**TOOL["function"], "parameters": {"properties": {MARK: {}}}}}],
    },
    "format schema": {"messages": user("hi"), "format": {"type": "object", "properties": {MARK: {"type": "string"}}}},
}
GENERATE_FIELDS: dict[str, dict[str, Any]] = {
    "prompt": {"prompt": MARK},
    "system": {"prompt": "hi", "system": MARK},
    "suffix": {"prompt": "hi", "suffix": MARK},
    "raw prompt": {"prompt": f"[INST] {MARK} [/INST]", "raw": True},
}


@pytest.mark.parametrize(
    ("route", "fields"),
    [("/api/chat", f) for f in CHAT_FIELDS.values()] + [("/api/generate", f) for f in GENERATE_FIELDS.values()],
    ids=[f"chat {n}" for n in CHAT_FIELDS] + [f"generate {n}" for n in GENERATE_FIELDS],
)
def test_every_request_field_is_inspected(stack, upstream, route: str, fields: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    status, _, body = raw_http(front.port, "POST", route, json.dumps({"model": "m", **fields}).encode())
    assert status == 400 and "hate" in json.loads(body)["error"]
    assert upstream.received == []


@pytest.mark.parametrize("field", ["template", "context"])
def test_unreadable_model_input_is_refused_unless_passed(stack, upstream, field: str) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    value = "{{ .Prompt }}" if field == "template" else [1, 2, 3]
    status, _, body = raw_http(
        front.port,
        "POST",
        "/api/generate",
        json.dumps({"model": "m", "prompt": "hi", field: value, "stream": False}).encode(),
    )
    assert status == 400 and field in json.loads(body)["error"]
    assert upstream.received == []
    passing = filtered(ScriptedUpstream(), passthrough_fields=[field])
    transport = httpx.ASGITransport(app=passing)

    async def call() -> int:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.post(
                "/api/generate", json={"model": "m", "prompt": "hi", field: value, "stream": False}
            )
            return answer.status_code

    import anyio

    assert anyio.run(call) == 200


def test_images_are_media_not_text(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    image = "iVBORw0KGgo" + "A1b2" * 200
    request = {
        "model": "m",
        "messages": [{"role": "user", "content": "what is this?", "images": [image]}],
        "stream": False,
    }
    status, _, body = raw_http(front.port, "POST", "/api/chat", json.dumps(request).encode())
    assert status == 200 and body == CHAT_BYTES
    assert image.encode() in upstream.received[0][2]


RESPONSES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat content": ("/api/chat", {**CHAT, "message": {"role": "assistant", "content": MARK}}),
    "chat thinking": ("/api/chat", {**CHAT, "message": {"role": "assistant", "content": "ok", "thinking": MARK}}),
    "chat tool_calls": (
        "/api/chat",
        {
            **CHAT,
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "f", "arguments": {"q": MARK}}}],
            },
        },
    ),
    "generate response": ("/api/generate", {"model": "m", "response": MARK, "done": True}),
    "generate thinking": ("/api/generate", {"model": "m", "response": "ok", "thinking": MARK, "done": True}),
}


@pytest.mark.parametrize("name", list(RESPONSES))
def test_every_response_field_is_inspected(stack, upstream, name: str) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    route, reply = RESPONSES[name]
    upstream.script([json.dumps(reply).encode()])
    body = {"model": "m", "stream": False, **({"messages": user("hi")} if route == "/api/chat" else {"prompt": "hi"})}
    status, _, answer = raw_http(front.port, "POST", route, json.dumps(body).encode())
    assert status == 200 and MARK.encode() not in answer and json.loads(answer)["done_reason"] == "content_filter"


STREAMS = {
    "chat content": ("/api/chat", chat_stream(*SPLIT)),
    "chat thinking": ("/api/chat", chat_stream(*SPLIT, field="thinking")),
    "generate response": ("/api/generate", generate_stream(*SPLIT)),
    "generate thinking": ("/api/generate", generate_stream(*SPLIT, field="thinking")),
    "lines split mid-JSON": (
        "/api/chat",
        [b"".join(chat_stream(*SPLIT))[i : i + 7] for i in range(0, len(b"".join(chat_stream(*SPLIT))), 7)],
    ),
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_stream_fields_never_leak(stack, upstream, name: str) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    route, events = STREAMS[name]
    upstream.script(events, NDJSON)
    body = {"model": "m", **({"messages": user("hi")} if route == "/api/chat" else {"prompt": "hi"})}
    status, _, answer = raw_http(front.port, "POST", route, json.dumps(body).encode())
    last = json.loads(answer.splitlines()[-1])
    assert status == 200 and b"zz" not in answer and last["done"] is True and last["done_reason"] == "content_filter", (
        name,
        answer,
    )


@pytest.mark.anyio
async def test_annotations_ride_along_and_the_client_still_parses() -> None:
    upstream = ScriptedUpstream()
    upstream.script([CHAT_BYTES])
    transport = httpx.ASGITransport(app=filtered(upstream, annotations="always"))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.post("/api/chat", json={"model": "m", "messages": user("hi"), "stream": False})
    body = answer.json()
    assert answer.headers["x-safety-filter-action"] == "annotate"
    assert body["content_filter_results"]["hate"]["filtered"] is False and "prompt_filter_results" in body
    assert ollama.ChatResponse(**body).message.content == "Happy to help."
