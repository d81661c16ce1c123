"""A tiny built-in "model" so `safety-filter serve` shows something with no upstream.

It speaks the OpenAI chat and completions APIs, streamed or not. Its replies are scripted in
`data/demo_replies.json`: ask it for `demo: allowed`, `demo: annotated` or `demo: blocked` to see
each kind of answer come through the filter (the blocked script is caught in the completion, since
the prompt asking for it is harmless), or start with `say:` to have it repeat your words.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from functools import cache
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from safety_filter.resources import data_dir


@cache
def _replies() -> dict[str, Any]:
    return json.loads((data_dir() / "demo_replies.json").read_text(encoding="utf-8"))


def reply_to(prompt: str) -> str:
    replies = _replies()
    lowered = prompt.strip().lower()
    if lowered.startswith("say:"):
        return prompt.strip()[4:].strip()
    for trigger, reply in replies["scripts"].items():
        if trigger in lowered:
            return str(reply)
    return str(replies["default"])


def _last_user_text(body: dict[str, Any]) -> str:
    if isinstance(body.get("prompt"), str):
        return body["prompt"]
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


async def _complete(request: Request) -> Response:
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": {"message": "invalid JSON", "code": "invalid_json"}}, status_code=400)
    chat = request.url.path.endswith("/chat/completions")
    text = reply_to(_last_user_text(body))
    ident = f"demo-{uuid.uuid4().hex[:12]}"
    created = int(time.time())
    model = str(body.get("model") or "safety-filter-demo")
    if body.get("stream") is True:
        return StreamingResponse(_stream(text, chat, ident, created, model), media_type="text/event-stream")
    if chat:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
        }
    else:
        choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
    words = len(text.split())
    return JSONResponse(
        {
            "id": ident,
            "object": "chat.completion" if chat else "text_completion",
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": {"prompt_tokens": 0, "completion_tokens": words, "total_tokens": words},
        }
    )


async def _stream(text: str, chat: bool, ident: str, created: int, model: str):  # type: ignore[no-untyped-def]
    obj = "chat.completion.chunk" if chat else "text_completion"

    def event(piece: str | None, finish: str | None, first: bool = False) -> bytes:
        if chat:
            delta: dict[str, Any] = (
                {"role": "assistant", "content": ""} if first else ({"content": piece} if piece else {})
            )
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": piece or "", "finish_reason": finish}
        chunk = {"id": ident, "object": obj, "created": created, "model": model, "choices": [choice]}
        return f"data: {json.dumps(chunk)}\n\n".encode()

    if chat:
        yield event(None, None, first=True)
    for start in range(0, len(text), 4):  # small pieces, like tokens
        yield event(text[start : start + 4], None)
        await asyncio.sleep(0.005)
    yield event(None, "stop")
    yield b"data: [DONE]\n\n"


async def _models(request: Request) -> Response:
    return JSONResponse(
        {"object": "list", "data": [{"id": "safety-filter-demo", "object": "model", "owned_by": "safety-filter"}]}
    )


def demo_app() -> Starlette:
    routes = [
        Route("/v1/chat/completions", _complete, methods=["POST"]),
        Route("/v1/completions", _complete, methods=["POST"]),
        Route("/openai/deployments/{name}/chat/completions", _complete, methods=["POST"]),
        Route("/openai/v1/chat/completions", _complete, methods=["POST"]),
        Route("/v1/models", _models, methods=["GET"]),
    ]
    return Starlette(routes=routes)
