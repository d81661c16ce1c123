"""A fake OpenAI-compatible model (raw ASGI, no framework) and an in-process ASGI client.

`EchoModel` answers a chat request with a completion derived from the request: the first word of
the last message (a nonce) followed by a fixed benign text of `completion_chars` characters, so
every new nonce gives first-seen text in both directions. `replies` maps a nonce to a scripted
reply (streaming tests feed it harmful completions read from data files). With `"stream": true`
it sends SSE chunks of `piece` characters, optionally `pace` seconds apart.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import benign_chars

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

CHAT_PATH = "/v1/chat/completions"


class EchoModel:
    def __init__(self, completion_chars: int = 2048, piece: int = 4, pace: float = 0.0, seed: int = 7) -> None:
        self.completion = benign_chars(random.Random(seed), completion_chars)
        self.piece = piece
        self.pace = pace
        self.replies: dict[str, str] = {}
        self.settings: dict[str, tuple[int, float]] = {}  # nonce -> (piece, pace) for streams

    def reply_for(self, body: dict[str, Any]) -> tuple[str, str]:
        messages = body.get("messages") or [{}]
        content = str(messages[-1].get("content") or "")
        nonce = content.split(" ", 2)[1].rstrip(".") if content.startswith("Ref ") else content.split(" ", 1)[0]
        if nonce in self.replies:
            return nonce, self.replies[nonce]
        return nonce, f"{nonce} {self.completion}"[: len(self.completion)]

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        try:
            body = json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            body = {}
        if scope.get("method") != "POST" or not isinstance(body, dict):
            await _send_bytes(send, 200, b"ok", b"text/plain")
            return
        nonce, reply = self.reply_for(body)
        if body.get("stream"):
            piece, pace = self.settings.get(nonce, (self.piece, self.pace))
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
                }
            )
            for event in stream_events(reply, piece):
                if pace:
                    await asyncio.sleep(pace)
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        payload = {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1,
            "model": "bench",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        await _send_bytes(send, 200, json.dumps(payload).encode(), b"application/json")


async def _send_bytes(send: Callable[[Message], Awaitable[None]], status: int, data: bytes, ctype: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data, "more_body": False})


def stream_events(reply: str, piece: int) -> list[bytes]:
    head = {"id": "s1", "object": "chat.completion.chunk", "created": 1, "model": "bench"}
    opening = {"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}
    events = [f"data: {json.dumps({**head, 'choices': [opening]})}\n\n".encode()]
    for start in range(0, len(reply), piece):
        choice = {"index": 0, "delta": {"content": reply[start : start + piece]}, "finish_reason": None}
        events.append(f"data: {json.dumps({**head, 'choices': [choice]})}\n\n".encode())
    events.append(
        f"data: {json.dumps({**head, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n".encode()
    )
    events.append(b"data: [DONE]\n\n")
    return events


def chat_body(messages: list[dict[str, str]], *, stream: bool = False) -> bytes:
    return json.dumps({"model": "bench", "messages": messages, "stream": stream}).encode()


# -- in-process ASGI client ----------------------------------------------------------------


@dataclass
class Result:
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    first_content: float | None = None  # seconds to the first body bytes carrying content text
    content: str = ""  # streamed content text the client received, in order
    finish_reason: str | None = None


async def asgi_call(app: ASGIApp, body: bytes, *, path: str = CHAT_PATH, stream: bool = False) -> Result:
    """POST `body` to `app` in-process and collect the response (and stream timings)."""
    done = asyncio.Event()
    sent = False
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    result = Result()
    parts: list[bytes] = []
    buffer = b""
    t0 = time.perf_counter()

    async def send(message: Message) -> None:
        nonlocal buffer
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = {k.lower(): v for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            if chunk:
                parts.append(chunk)
                if stream:
                    buffer += chunk
                    while b"\n\n" in buffer:
                        event, buffer = buffer.split(b"\n\n", 1)
                        _read_event(event, result, t0)
            if not message.get("more_body"):
                done.set()

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    result.seconds = time.perf_counter() - t0
    result.body = b"".join(parts)
    return result


def _read_event(event: bytes, result: Result, t0: float) -> None:
    text = event.decode("utf-8", "replace")
    if not text.startswith("data:"):
        return
    data = text[5:].strip()
    if data == "[DONE]":
        return
    try:
        chunk = json.loads(data)
    except ValueError:
        return
    for choice in chunk.get("choices") or []:
        piece = (choice.get("delta") or {}).get("content") or ""
        if piece:
            if result.first_content is None:
                result.first_content = time.perf_counter() - t0
            result.content += piece
        if choice.get("finish_reason"):
            result.finish_reason = choice["finish_reason"]
