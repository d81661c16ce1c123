"""Test helpers: a fake detector driven by marker words, tiny chat apps, a real server in a thread.

The fake detector lets the middleware, stream guard and engine be tested with no model and no
harmful text: `zzhate` scores as hate, `zzsex` as sexual, `zzslow` sleeps, `zzboom` raises.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from safety_filter.findings import Finding
from safety_filter.policy import Policy, parse_policy

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MARKERS = {"zzhate": ("hate", 0.95), "zzsex": ("sexual", 0.7), "zznazi": ("extremism", 0.9)}


class FakeDetector:
    name = "fake"

    def __init__(self) -> None:
        self.loaded = 0
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    def load(self) -> None:
        self.loaded += 1

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]:
        with self.lock:
            self.calls.append(list(texts))
        out = []
        for text in texts:
            lowered = text.lower()
            if "zzboom" in lowered:
                raise RuntimeError("detector exploded")
            if "zzslow" in lowered:
                time.sleep(0.5)
            found = []
            for marker, (category, score) in MARKERS.items():
                start = lowered.find(marker)
                if start >= 0:
                    found.append(Finding(category, score, self.name, (start, start + len(marker)), f"fake:{marker}"))
            out.append(found)
        return out


def make_policy(**overrides: Any) -> Policy:
    """The shipped default policy with some top-level keys replaced (YAML-level, validated)."""
    import yaml

    from safety_filter.resources import default_policy_path

    data = yaml.safe_load(default_policy_path().read_text())
    data.update(overrides)
    return parse_policy(yaml.safe_dump(data), source="<test>")


class ChatApp:
    """A fake model server: answers `reply` as JSON or as SSE in pieces of `piece` characters."""

    def __init__(self, reply: str = "Hello there, how can I help?", piece: int = 3) -> None:
        self.reply = reply
        self.piece = piece
        self.calls = 0
        self.received: list[bytes] = []
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/completions", self.chat, methods=["POST"]),
                Route("/openai/deployments/{name}/chat/completions", self.chat, methods=["POST"]),
                Route("/health", self.health, methods=["GET", "POST"]),
            ]
        )

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        await self.app(scope, receive, send)

    async def health(self, request: Request) -> Response:
        return Response(b"ok zzhate", media_type="text/plain")

    async def chat(self, request: Request) -> Response:
        self.calls += 1
        raw = await request.body()
        self.received.append(raw)
        encoding = request.headers.get("content-encoding")
        if encoding in ("gzip", "deflate"):
            import zlib

            raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        body = json.loads(raw)
        chat = request.url.path.endswith("chat/completions")
        if body.get("stream"):
            return StreamingResponse(self.events(chat), media_type="text/event-stream")
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": self.reply}, "finish_reason": "stop"}
        else:
            choice = {"index": 0, "text": self.reply, "finish_reason": "stop"}
        # Deliberately unusual formatting: an allowed response must arrive byte for byte.
        payload = '{ "id":"x1",  "object":"chat.completion", "choices":[' + json.dumps(choice) + "] }"
        return Response(payload.encode(), media_type="application/json")

    def chunks(self, chat: bool) -> list[bytes]:
        events = []
        for start in range(0, len(self.reply), self.piece):
            piece = self.reply[start : start + self.piece]
            if chat:
                choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            else:
                choice = {"index": 0, "text": piece, "finish_reason": None}
            chunk = {"id": "s1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
            events.append(f"data: {json.dumps(chunk)}\n\n".encode())
        events.append(
            b'data: {"id":"s1","object":"chat.completion.chunk","created":1,"model":"m",'
            b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
        )
        events.append(b"data: [DONE]\n\n")
        return events

    async def events(self, chat: bool):  # type: ignore[no-untyped-def]
        for event in self.chunks(chat):
            yield event


def chat_request(content: str, *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], "stream": stream, **extra}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningServer:
    """A real uvicorn server on 127.0.0.1 in a background thread (stopped on exit)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
