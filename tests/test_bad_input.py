"""Bad input gets a clear JSON error, never a 500 or a hang, and the app never sees uninspected text."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.audit import AuditLog

from .helpers import ChatApp, FakeDetector, make_policy

pytestmark = pytest.mark.anyio


def build(**policy: Any) -> tuple[ChatApp, SafetyFilterMiddleware]:
    app = ChatApp()
    engine = Engine(make_policy(**policy), [FakeDetector()])
    return app, SafetyFilterMiddleware(app, engine=engine, audit=AuditLog(None))


async def post(
    asgi: Any, content: bytes, headers: dict[str, str] | None = None, path: str = "/v1/chat/completions"
) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as http:
        return await http.post(path, content=content, headers={"content-type": "application/json", **(headers or {})})


def deep(n: int) -> bytes:
    return b'{"messages": ' + b"[" * n + b"]" * n + b"}"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"", 400, "not valid JSON"),
        (b"{not json", 400, "not valid JSON"),
        (b'{"messages": [{"role": "user", "content": "caf\xe9"}]}', 400, "not valid UTF-8"),
        (b"[1, 2, 3]", 400, "JSON object"),
        (b'{"messages": "hello"}', 400, "'messages' must be a list"),
        (b'{"messages": [{"role": "user", "content": 42}]}', 400, "messages[0].content"),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]}',
            400,
            "messages[0].content[0].text",
        ),
        (b'{"messages": [42]}', 400, "messages[0] must be an object"),
        (b'{"messages": [], "messages": [{"role": "user", "content": "zzhate"}]}', 400, "duplicate key"),
        (deep(100_000), 400, "nested too deeply"),
        (b'{"prompt": [1, 2, 3]}', 400, "token ids"),
    ],
)
async def test_malformed_requests_get_a_clear_400_and_never_reach_the_app(
    body: bytes, status: int, needle: str
) -> None:
    app, filtered = build(limits={"max_request_bytes": 1_000_000})
    path = "/v1/completions" if b"prompt" in body else "/v1/chat/completions"
    response = await post(filtered, body, path=path)
    assert response.status_code == status
    assert needle in response.json()["error"]["message"]
    assert response.headers["x-safety-filter-action"] == "block"
    assert app.calls == 0


async def test_null_content_and_tool_calls_are_fine_and_tool_arguments_are_inspected() -> None:
    app, filtered = build()
    ok = {
        "messages": [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            }
        ]
    }
    assert (await post(filtered, json.dumps(ok).encode())).status_code == 200
    bad = {
        "messages": [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "1", "type": "function", "function": {"name": "f", "arguments": '{"q": "zzhate"}'}}
                ],
            }
        ]
    }
    assert (await post(filtered, json.dumps(bad).encode())).status_code == 400
    tool = {"messages": [{"role": "tool", "tool_call_id": "1", "content": "result: zzhate"}]}
    assert (await post(filtered, json.dumps(tool).encode())).status_code == 400
    assert app.calls == 1


async def test_unicode_escapes_are_decoded_before_inspection() -> None:
    app, filtered = build()
    body = b'{"messages": [{"role": "user", "content": "\\u007a\\u007ahate"}]}'
    assert (await post(filtered, body)).status_code == 400
    assert app.calls == 0


async def test_ten_thousand_messages_are_all_inspected_or_refused() -> None:
    app, filtered = build(
        limits={"max_request_bytes": 10_000_000, "max_texts_per_request": 40_000, "max_text_chars": 2_000_000}
    )
    messages = [{"role": "user", "content": f"message {i}"} for i in range(10_000)]
    messages[9_999]["content"] = "the last one says zzhate"
    response = await post(filtered, json.dumps({"messages": messages}).encode())
    assert response.status_code == 400 and app.calls == 0
    strict_app, strict = build(limits={"max_request_bytes": 10_000_000, "max_texts_per_request": 5_000})
    response = await post(strict, json.dumps({"messages": messages[:9_999]}).encode())
    assert response.status_code == 413 and "more than 5000 texts" in response.json()["error"]["message"]
    assert strict_app.calls == 0


async def test_oversized_body_is_refused_without_reading_the_rest() -> None:
    app, filtered = build(limits={"max_request_bytes": 1000})
    sent = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        sent += 1
        return {"type": "http.request", "body": b"x" * 400, "more_body": True}  # never ends

    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    await filtered(scope, receive, send)
    assert messages[0]["status"] == 413
    assert sent == 3  # stopped as soon as the limit was passed
    messages.clear()
    sent = 0
    declared = {**scope, "headers": [(b"content-length", b"5000000")]}
    await filtered(declared, receive, send)
    assert messages[0]["status"] == 413
    assert sent == 0  # a declared length over the limit is refused before reading anything
    assert app.calls == 0


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_requests_are_inspected(encoding: str) -> None:
    app, filtered = build()
    raw = json.dumps({"messages": [{"role": "user", "content": "zzhate"}]}).encode()
    packed = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    response = await post(filtered, packed, headers={"content-encoding": encoding})
    assert response.status_code == 400 and response.json()["error"]["code"] == "content_filter"
    safe = json.dumps({"messages": [{"role": "user", "content": "hello"}]}).encode()
    response = await post(
        filtered,
        gzip.compress(safe) if encoding == "gzip" else zlib.compress(safe),
        headers={"content-encoding": encoding},
    )
    assert response.status_code == 200 and app.calls == 1


async def test_decompression_bomb_gets_413() -> None:
    app, filtered = build(limits={"max_request_bytes": 100_000})
    bomb = gzip.compress(b'{"messages": [{"role": "user", "content": "' + b"a" * 50_000_000 + b'"}]}')
    assert len(bomb) < 100_000
    response = await post(filtered, bomb, headers={"content-encoding": "gzip"})
    assert response.status_code == 413 and app.calls == 0


async def test_unknown_content_encoding_is_refused() -> None:
    app, filtered = build()
    response = await post(filtered, b"\x00\x01", headers={"content-encoding": "br"})
    assert response.status_code == 415 and app.calls == 0


async def test_chunked_request_body_is_reassembled() -> None:
    app, filtered = build()
    raw = json.dumps({"messages": [{"role": "user", "content": "split zzhate here"}]}).encode()
    pieces = [raw[i : i + 5] for i in range(0, len(raw), 5)]

    async def body():  # type: ignore[no-untyped-def]
        for piece in pieces:
            yield piece

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=filtered), base_url="http://t") as http:
        response = await http.post("/v1/chat/completions", content=body())
    assert response.status_code == 400 and app.calls == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "messages",
                        "content",
                        "role",
                        "text",
                        "type",
                        "prompt",
                        "tool_calls",
                        "function",
                        "arguments",
                        "stream",
                    ]
                ),
                children,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
async def test_any_json_body_gets_a_clean_answer(body: Any) -> None:
    app, filtered = build()
    response = await post(filtered, json.dumps(body).encode())
    assert response.status_code in (200, 400, 413)
    if response.status_code != 200:
        assert response.json()["error"]["message"]
        assert app.calls == 0
