"""The README's `app.add_middleware(SafetyFilterMiddleware, ...)` in a real FastAPI app on uvicorn,
driven by the official `openai` client: allowed, blocked prompt, blocked output, and a cut stream
that leaks no byte of the offending text. The app's own routes (`/docs`) still work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.audit import AuditLog

from .helpers import FakeDetector, RunningServer, make_policy

pytestmark = pytest.mark.slow  # real servers or real models


def model_app() -> FastAPI:
    """A FastAPI "model" that repeats the last user message backwards: a prompt that passes the
    filter can so make it write the marker."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        reply = str(body["messages"][-1]["content"])[::-1]
        if body.get("stream"):

            async def events() -> Any:
                for start in range(0, len(reply), 3):
                    chunk = {
                        "id": "f",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "m",
                        "choices": [
                            {"index": 0, "delta": {"content": reply[start : start + 3]}, "finish_reason": None}
                        ],
                    }
                    yield f"data: {json.dumps(chunk)}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "f",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            }
        )

    engine = Engine(make_policy(), [FakeDetector()])
    app.add_middleware(SafetyFilterMiddleware, engine=engine, audit=AuditLog(None))
    return app


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with RunningServer(model_app()) as running:
        yield running.url


@pytest.fixture
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="k", max_retries=0)


def backwards(text: str) -> str:
    return text[::-1]


def test_allowed_answer_and_the_apps_own_routes(client: openai.OpenAI, server: str) -> None:
    answer = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": backwards("good morning")}]
    )
    assert answer.choices[0].message.content == "good morning"
    assert httpx.get(f"{server}/docs").status_code == 200


def test_blocked_prompt_raises_the_clients_normal_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "zzhate"}])
    assert raised.value.code == "content_filter"


def test_blocked_output_is_withheld(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": backwards("it says zzhate")}]
    )
    assert answer.choices[0].finish_reason == "content_filter"
    assert answer.choices[0].message.content is None


def test_stream_is_cut_with_no_byte_of_the_marker(client: openai.OpenAI) -> None:
    reply = "long harmless opening words that go on for a while, then zzhate, then more"
    text, finish = "", None
    for chunk in client.chat.completions.create(
        model="m", stream=True, messages=[{"role": "user", "content": backwards(reply)}]
    ):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert finish == "content_filter"
    assert reply.startswith(text) and len(text) <= reply.index("zzhate")
