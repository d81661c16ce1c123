"""Attacks on what the filter reads: routes, methods, fields, response fields, stream framings,
body encodings, overload and headers. Each family is tried in many variants, end to end through
a real uvicorn running `serve`'s stack (middleware + proxy, inspected routes only) in front of a
scripted upstream that logs what it receives, and through the middleware in-process.

The rule under test: nothing the detector would flag (the marker `zzhate`, see tests/helpers) reaches
the upstream or the client, whatever the framing; benign traffic stays byte for byte.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from typing import Any

import httpx
import pytest

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.audit import AuditLog
from safety_filter.errors import Overloaded
from safety_filter.findings import Finding
from safety_filter.serve.proxy import UpstreamProxy

from .helpers import FakeDetector, RunningServer, make_policy

pytestmark = pytest.mark.slow  # real servers or real models

MARK = "zzhate"
BENIGN_REPLY = {
    "id": "c1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Happy to help."}, "finish_reason": "stop"}],
}


class ScriptedUpstream:
    """A model server that logs every request and answers what the test scripted."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, bytes]] = []
        self.status = 200
        self.headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
        self.chunks: list[bytes] = [json.dumps(BENIGN_REPLY).encode()]

    def script(
        self,
        chunks: list[bytes],
        content_type: bytes | None = b"application/json",
        status: int = 200,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.status, self.chunks = status, chunks
        self.headers = ([(b"content-type", content_type)] if content_type else []) + (extra or [])

    def saw(self, marker: str = MARK) -> bool:
        return any(marker.encode() in body or marker in path for _, path, body in self.received)

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.received.append((scope["method"], scope.get("raw_path", b"").decode("latin-1") or scope["path"], body))
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        for chunk in self.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class PhraseDetector:
    """Flags the two-word phrase `zzalpha zzbravo` however it is spaced: a sentence-level signal."""

    name = "phrase"

    def load(self) -> None:
        pass

    def detect(self, texts):  # type: ignore[no-untyped-def]
        return [[Finding("hate", 0.95, self.name)] if "zzalpha zzbravo" in " ".join(t.split()) else [] for t in texts]


def filtered(app: Any, *, proxy: bool = False, **policy: Any) -> SafetyFilterMiddleware:
    engine = Engine(make_policy(**policy), [FakeDetector(), PhraseDetector()])
    return SafetyFilterMiddleware(app, engine=engine, audit=AuditLog(None), inspected_routes_only=proxy)


@pytest.fixture(scope="module")
def stack():  # type: ignore[no-untyped-def]
    upstream = ScriptedUpstream()
    with RunningServer(upstream) as up, RunningServer(filtered(UpstreamProxy(up.url, timeout=5), proxy=True)) as front:
        yield upstream, front


@pytest.fixture
def upstream(stack):  # type: ignore[no-untyped-def]
    app, _ = stack
    app.received.clear()
    app.script([json.dumps(BENIGN_REPLY).encode()])
    return app


def raw_http(
    port: int, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Send one request exactly as written (httpx would normalise the path first)."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        parsed.setdefault(key.strip().lower(), value.strip())
    if parsed.get("transfer-encoding") == "chunked":
        out, rest_b = b"", rest
        while rest_b:
            size_line, _, rest_b = rest_b.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            out, rest_b = out + rest_b[:size], rest_b[size + 2 :]
        rest = out
    return int(status_line.split()[1]), parsed, rest


def through(
    via: str, stack: Any, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request through `serve`'s stack on uvicorn ("serve"), or the middleware in-process
    around the same scripted app ("asgi")."""
    upstream, front = stack
    if via == "serve":
        return raw_http(front.port, method, path, body, headers)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=filtered(upstream))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, path, content=body, headers=headers)

    response = asyncio.run(go())
    return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content


VIA = ["serve", "asgi"]


def harmful_chat(**extra: Any) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": f"say {MARK}"}], **extra}).encode()


# -- 1. routes and methods -------------------------------------------------------------------

AMBIGUOUS_TARGETS = [
    "/v1/./chat/completions", "/v1/x/../chat/completions", "/./v1/chat/completions", "/v1/chat/completions/.",
    "/v1/chat/completions/..", "//v1/chat/completions", "/v1//chat/completions", "/v1/chat//completions",
    "/v1/chat/completions;x=1", "/v1;/chat/completions", "/v1/%2e/chat/completions", "/v1/%2E%2E/v1/chat/completions",
    "/v1/chat%2fcompletions", "/v1/chat%2Fcompletions", "/v1/%252e/chat/completions", "/v1\\chat\\completions",
    "/v1/chat/completions%00", "/v1/chat/completions%20", "/v1/chat/completions#frag",
    "http://127.0.0.1/v1/chat/completions", "127.0.0.1/v1/chat/completions",
]


@pytest.mark.parametrize("target", AMBIGUOUS_TARGETS)
def test_ambiguous_targets_are_refused_and_never_forwarded(stack, upstream, target: str) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    status, headers, body = raw_http(front.port, "POST", target, harmful_chat(), {"content-type": "application/json"})
    assert 400 <= status < 500, (target, status, body)
    assert not upstream.saw()
    if status != 400 or headers.get("content-type") == "application/json":
        assert json.loads(body)["error"]["message"]


EQUIVALENT_TARGETS = [
    "/V1/Chat/Completions",
    "/v1/chat/completions/",
    "/v1/%63hat/completions",
    "/chat/completions",
    "/openai/v1/chat/completions",
    "/openai/deployments/gpt/chat/completions",
]


@pytest.mark.parametrize("target", EQUIVALENT_TARGETS)
def test_other_spellings_of_inspected_routes_are_inspected(stack, upstream, target: str) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    status, _, body = raw_http(front.port, "POST", target, harmful_chat(), {"content-type": "application/json"})
    assert status == 400 and json.loads(body)["error"]["code"] == "content_filter", (target, body)
    assert not upstream.saw()


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("post", {}), ("Post", {}), ("pOST", {}), ("PUT", {}), ("PATCH", {}), ("GET", {}), ("DELETE", {}),
        ("POST", {"X-HTTP-Method-Override": "PUT"}), ("GET", {"X-HTTP-Method-Override": "POST"}),
        ("POST", {"X-HTTP-Method": "POST"}), ("POST", {"X-Method-Override": "POST"}),
        ("GET", {"X-Original-URL": "/v1/chat/completions"}), ("POST", {"X-Rewrite-URL": "/v1/chat/completions"}),
    ],
)
def test_other_methods_and_overrides_never_forward_uninspected(
    stack, upstream, method: str, headers: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    status, _, _ = raw_http(
        front.port, method, "/v1/chat/completions", harmful_chat(), {"content-type": "application/json", **headers}
    )
    assert 400 <= status < 500, (method, headers, status)
    assert not upstream.saw()


@pytest.mark.parametrize(
    "target", ["/v1/embeddings", "/v1/files", "/admin", "/v1/models/../admin", "/v1/fine_tuning/jobs", "/api/tags"]
)
def test_routes_neither_inspected_nor_passed_through_get_a_json_404(stack, upstream, target: str) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    status, headers, _ = raw_http(front.port, "POST", target, harmful_chat())
    assert status in (400, 404, 501) and headers["content-type"] == "application/json"
    assert not upstream.saw()


def test_passthrough_routes_and_benign_chat_are_forwarded_exactly(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    upstream.script([b'{"data": [{"id": "m"}]}'])
    status, _, body = raw_http(front.port, "GET", "/v1/models")
    assert status == 200 and body == b'{"data": [{"id": "m"}]}'
    upstream.script([json.dumps(BENIGN_REPLY).encode()])
    request = json.dumps({"messages": [{"role": "user", "content": "hello"}]}).encode()
    status, headers, body = raw_http(
        front.port, "POST", "/V1/Chat/Completions", request, {"content-type": "application/json"}
    )
    assert status == 200 and body == json.dumps(BENIGN_REPLY).encode()
    assert upstream.received[-1] == ("POST", "/V1/Chat/Completions", request)
    assert headers["x-safety-filter-action"] == "allow"


# -- 2. request fields a model reads ---------------------------------------------------------

def _msg(**fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "hi"}, fields]}


FIELD_VARIANTS = {
    "refusal part": _msg(role="assistant", content=[{"type": "refusal", "refusal": MARK}]),
    "thinking part": _msg(role="assistant", content=[{"type": "thinking", "thinking": MARK, "signature": "s"}]),
    "unknown part type": _msg(role="user", content=[{"type": "future_part", "payload": {"words": MARK}}]),
    "string part": _msg(role="user", content=[MARK]),
    "tool args as object": _msg(
        role="assistant",
        content=None,
        tool_calls=[{"id": "1", "type": "function", "function": {"name": "f", "arguments": {"q": MARK}}}],
    ),
    "tool args as string": _msg(
        role="assistant",
        tool_calls=[{"id": "1", "type": "function", "function": {"name": "f", "arguments": json.dumps({"q": MARK})}}],
    ),
    "custom tool input": _msg(
        role="assistant", tool_calls=[{"id": "1", "type": "custom", "custom": {"name": "x", "input": MARK}}]
    ),
    "tool name": _msg(
        role="assistant", tool_calls=[{"id": "1", "type": "function", "function": {"name": MARK, "arguments": "{}"}}]
    ),
    "function_call": _msg(role="assistant", function_call={"name": "f", "arguments": {"q": MARK}}),
    "message name": _msg(role="user", name=MARK, content="hello"),
    "reasoning_content": _msg(role="assistant", content="ok", reasoning_content=MARK),
    "reasoning": _msg(role="assistant", content="ok", reasoning=MARK),
    "tool message": _msg(role="tool", tool_call_id="1", content=[{"type": "text", "text": MARK}]),
    "tools description": {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "description": MARK}}],
    },
    "tools param description": {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": MARK}}},
                },
            }
        ],
    },
    "tools nested schema": {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "a": {"type": "array", "items": {"type": "object", "properties": {"b": {"enum": [MARK]}}}}
                        },
                    },
                },
            }
        ],
    },
    "schema property name": {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "parameters": {"type": "object", "properties": {MARK: {"type": "string"}}}},
            }
        ],
    },
    "legacy functions": {
        "messages": [{"role": "user", "content": "hi"}],
        "functions": [{"name": "f", "description": MARK}],
    },
    "response_format": {
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object", "description": MARK}},
        },
    },
    "documents": {"messages": [{"role": "user", "content": "hi"}], "documents": [{"title": "doc", "text": MARK}]},
    "unknown top-level field": {"messages": [{"role": "user", "content": "hi"}], "system_prompt_extra": MARK},
    "sentence split across messages": {
        "messages": [{"role": "user", "content": "zzalpha"}, {"role": "user", "content": "zzbravo"}]
    },
    "sentence split over a run of messages": {
        "messages": [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": "zzalpha"},
            {"role": "user", "content": "zzbravo"},
            {"role": "user", "content": "thanks"},
        ]
    },
    "sentence split across parts": {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "zzalpha"}, {"type": "text", "text": "zzbravo"}]}
        ]
    },
}


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("name", list(FIELD_VARIANTS))
def test_every_request_field_a_model_reads_is_inspected(stack, upstream, name: str, via: str) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"model": "m", **FIELD_VARIANTS[name]}).encode()
    status, _, answer = through(via, stack, "POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    assert status == 400, (name, answer)
    assert not upstream.saw() and not upstream.received


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "hello", "suffix": MARK},
        {"prompt": ["hello", MARK]},
        {"prompt": "hello", "echo": True, "stop": [MARK]},
    ],
)
def test_completion_fields_are_inspected(stack, upstream, body: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    status, _, _ = raw_http(front.port, "POST", "/v1/completions", json.dumps({"model": "m", **body}).encode())
    assert status == 400 and not upstream.received


@pytest.mark.parametrize("field", ["chat_template", "chat_template_kwargs", "prompt_token_ids", "grammar"])
def test_model_input_that_cannot_be_read_is_refused(stack, upstream, field: str) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    body = json.dumps(
        {
            "messages": [{"role": "user", "content": "hi"}],
            field: "{{ anything }}" if field != "chat_template_kwargs" else {"x": 1},
        }
    ).encode()
    status, _, answer = raw_http(front.port, "POST", "/v1/chat/completions", body)
    assert status == 400 and field in json.loads(answer)["error"]["message"]
    assert not upstream.received


@pytest.mark.anyio
async def test_a_policy_can_pass_a_field_it_trusts() -> None:
    app = ScriptedUpstream()
    middleware = filtered(app, passthrough_fields=["chat_template"])
    body = {"messages": [{"role": "user", "content": "hi"}], "chat_template": "{{ messages }}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://t") as client:
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200 and app.received


# -- 3. response fields a client shows -------------------------------------------------------

def _reply(message: dict[str, Any], **choice: Any) -> bytes:
    return json.dumps(
        {
            "id": "c",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop", **choice}],
        }
    ).encode()


RESPONSE_VARIANTS = {
    "reasoning_content": _reply({"content": "fine", "reasoning_content": MARK}),
    "reasoning": _reply({"content": "fine", "reasoning": MARK}),
    "audio transcript": _reply({"content": None, "audio": {"id": "a", "data": "AAAA", "transcript": MARK}}),
    "tool call arguments": _reply(
        {
            "content": None,
            "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": "f", "arguments": json.dumps({"x": MARK})}}
            ],
        }
    ),
    "refusal": _reply({"content": None, "refusal": MARK}),
    "content with logprobs": _reply(
        {"content": MARK},
        logprobs={"content": [{"token": MARK, "logprob": -0.1, "top_logprobs": [{"token": MARK, "logprob": -0.1}]}]},
    ),
    "unknown message field": _reply({"content": "fine", "annotations_text": MARK}),
    "choice-level text": json.dumps({"choices": [{"index": 0, "text": MARK, "logprobs": {"tokens": [MARK]}}]}).encode(),
    "repeated index": json.dumps(
        {"choices": [{"index": 0, "message": {"content": MARK}}, {"index": 0, "message": {"content": "fine"}}]}
    ).encode(),
    "outside the choices": json.dumps(
        {"choices": [{"index": 0, "message": {"content": "fine"}}], "note": MARK}
    ).encode(),
}


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("name", list(RESPONSE_VARIANTS))
def test_every_response_field_a_client_shows_is_inspected(stack, upstream, name: str, via: str) -> None:  # type: ignore[no-untyped-def]
    upstream.script([RESPONSE_VARIANTS[name]])
    request = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    _, headers, body = through(via, stack, "POST", "/v1/chat/completions", request)
    assert MARK.encode() not in body, (name, body)
    assert headers["x-safety-filter-action"] == "block"


# -- 4. streams recognised by what clients do -----------------------------------------------

def _chunk(delta: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return {"id": "s", "object": "chat.completion.chunk", "choices": [{"index": index, "delta": delta}]}


def _events(deltas: list[dict[str, Any]], sep: str = "\n\n", prefix: str = "data: ") -> bytes:
    return "".join(prefix + json.dumps(d) + sep for d in deltas).encode() + f"data: [DONE]{sep}".encode()


SPLIT = [
    _chunk({"content": "opening words, "}),
    _chunk({"content": "zzh"}),
    _chunk({"content": "ate"}),
    _chunk({"content": " and the rest."}),
]
STREAM_VARIANTS: dict[str, tuple[list[bytes], bytes | None, list[tuple[bytes, bytes]]]] = {
    "labelled text/plain": ([_events(SPLIT)], b"text/plain", []),
    "labelled application/json": ([_events(SPLIT)], b"application/json", []),
    "no content type": ([_events(SPLIT)], None, []),
    "gzip encoded": ([gzip.compress(_events(SPLIT))], b"text/event-stream", [(b"content-encoding", b"gzip")]),
    "gzip in pieces": (
        [gzip.compress(_events(SPLIT))[i : i + 7] for i in range(0, len(gzip.compress(_events(SPLIT))), 7)],
        b"text/event-stream",
        [(b"content-encoding", b"gzip")],
    ),
    "brotli label": ([_events(SPLIT)], b"text/event-stream", [(b"content-encoding", b"br")]),
    "LF CRLF endings": ([_events(SPLIT, sep="\n\r\n")], b"text/event-stream", []),
    "LF CR endings": ([_events(SPLIT, sep="\n\r")], b"text/event-stream", []),
    "CR endings": ([_events(SPLIT, sep="\r\r")], b"text/event-stream", []),
    "leading BOM": ([b"\xef\xbb\xbf" + _events(SPLIT)], b"text/event-stream", []),
    "no space after data:": ([_events(SPLIT, prefix="data:")], b"text/event-stream", []),
    "reasoning_content deltas": (
        [_events([_chunk({"reasoning_content": "zzh"}), _chunk({"reasoning_content": "ate"})])],
        b"text/event-stream",
        [],
    ),
    "reasoning deltas": (
        [_events([_chunk({"reasoning": "zz"}), _chunk({"reasoning": "hate"})])],
        b"text/event-stream",
        [],
    ),
    "interleaved tool calls": (
        [
            _events(
                [
                    _chunk(
                        {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"q": "zz'}}]}
                    ),
                    _chunk(
                        {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": '{"r": "x'}}]}
                    ),
                    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'hate"}'}}]}),
                    _chunk({"tool_calls": [{"index": 1, "function": {"arguments": 'y"}'}}]}),
                ]
            )
        ],
        b"text/event-stream",
        [],
    ),
    "several data lines per event": (
        [b"".join(f"data: {json.dumps(d)}\n".encode() for d in SPLIT) + b"\n" + b"data: [DONE]\n\n"],
        b"text/event-stream",
        [],
    ),
    "not SSE at all": ([f"plain words then {MARK}".encode()], b"text/event-stream", []),
    "comment lines": ([f": {MARK}\n\n".encode() + _events(SPLIT[:1])], b"text/event-stream", []),
    "unknown field lines": ([f"note: {MARK}\n\n".encode() + _events(SPLIT[:1])], b"text/event-stream", []),
    "one event over 1 MiB": (
        [b"data: " + json.dumps(_chunk({"content": "a " * 600_000 + MARK})).encode() + b"\n\n"],
        b"text/event-stream",
        [],
    ),
}


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("name", list(STREAM_VARIANTS))
def test_stream_framings_never_leak(stack, upstream, name: str, via: str) -> None:  # type: ignore[no-untyped-def]
    chunks, content_type, extra = STREAM_VARIANTS[name]
    upstream.script(chunks, content_type, extra=extra)
    request = json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()
    _, headers, body = through(via, stack, "POST", "/v1/chat/completions", request)
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    assert b"zzh" not in body and b"zz\"" not in body.replace(b" ", b""), (name, body[:400])


def test_allowed_stream_in_odd_framing_stays_byte_for_byte(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    stream = _events([_chunk({"content": "all "}), _chunk({"content": "fine"})], sep="\n\r\n")
    upstream.script([stream[i : i + 5] for i in range(0, len(stream), 5)], b"text/event-stream")
    request = json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()
    status, _, body = raw_http(front.port, "POST", "/v1/chat/completions", request)
    assert status == 200 and body == stream


# -- 5. request bodies -----------------------------------------------------------------------

BODY_VARIANTS = {
    "utf-8 BOM": b"\xef\xbb\xbf" + harmful_chat(),
    "utf-16": harmful_chat().decode().encode("utf-16"),
    "utf-16-le": harmful_chat().decode().encode("utf-16-le"),
    "utf-32": harmful_chat().decode().encode("utf-32"),
    "lone surrogate": b'{"messages": [{"role": "user", "content": "\\ud800 zzhate"}]}',
    "lone low surrogate": b'{"messages": [{"role": "user", "content": "hi \\udfff"}]}',
}


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("name", list(BODY_VARIANTS))
def test_bodies_that_cannot_be_read_as_utf8_json_get_a_400(stack, upstream, name: str, via: str) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = through(
        via, stack, "POST", "/v1/chat/completions", BODY_VARIANTS[name], {"content-type": "application/json"}
    )
    assert status == 400 and headers["content-type"] == "application/json", (name, status, body)
    assert not upstream.received


# -- 6. overload and text caps ---------------------------------------------------------------

class _OverloadedEngine(Engine):
    async def check(self, texts, role):  # type: ignore[no-untyped-def]
        raise Overloaded("queue full", retry_after=2.0)


@pytest.mark.anyio
async def test_overload_is_a_fast_503_with_retry_after() -> None:
    app = ScriptedUpstream()
    middleware = SafetyFilterMiddleware(
        app, engine=_OverloadedEngine(make_policy(), [FakeDetector()]), audit=AuditLog(None)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://t") as client:
        response = await client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert not app.received


@pytest.mark.anyio
async def test_text_over_the_cap_is_a_413() -> None:
    app = ScriptedUpstream()
    middleware = filtered(app, limits={"max_text_chars": 1000})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://t") as client:
        response = await client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "word " * 300}]}
        )
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_much_text"
    assert not app.received


# -- 9. headers ------------------------------------------------------------------------------

def test_proxied_responses_carry_one_date_and_one_server(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    upstream.script(
        [json.dumps(BENIGN_REPLY).encode()],
        extra=[(b"date", b"Mon, 01 Jan 2024 00:00:00 GMT"), (b"server", b"upstream")],
    )
    with socket.create_connection(("127.0.0.1", front.port)) as sock:
        body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n")[0].lower()
    assert head.count(b"\r\ndate:") == 1 and head.count(b"\r\nserver:") == 1


def test_upstream_errors_say_error_not_allow(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    _, front = stack
    upstream.script([b'{"error": {"message": "overloaded"}}'], status=503)
    status, headers, _ = raw_http(
        front.port,
        "POST",
        "/v1/chat/completions",
        json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(),
    )
    assert status == 503 and headers["x-safety-filter-action"] == "error"
