"""llama.cpp's native `/completion` and `/infill` end to end: through a real uvicorn running
serve's stack in front of a scripted upstream, and through the middleware in-process (httpx).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from safety_filter.serve.proxy import UpstreamProxy

from .helpers import RunningServer
from .test_attack_surface import MARK, ScriptedUpstream, filtered, raw_http

pytestmark = pytest.mark.slow  # real servers or real models

RESULT = {
    "index": 0,
    "content": "Happy to help.",
    "id_slot": 0,
    "stop": True,
    "stop_type": "eos",
    "tokens_predicted": 4,
    "prompt": "hi",
}
# Deliberately unusual spacing: an allowed answer must arrive byte for byte.
RESULT_BYTES = json.dumps(RESULT, indent=1).encode()
SPLIT = ("Sure, here it is: zz", "ha", "te and more words.")


def events(*pieces: str) -> list[bytes]:
    parts = [{"index": 0, "content": p, "tokens": [1], "stop": False, "id_slot": 0} for p in pieces]
    parts.append(
        {"index": 0, "content": "", "stop": True, "stop_type": "eos", "id_slot": 0, "timings": {"predicted_n": 3}}
    )
    return [f"data: {json.dumps(part)}\n\n".encode() for part in parts]


@pytest.fixture(scope="module")
def stack():  # type: ignore[no-untyped-def]
    upstream = ScriptedUpstream()
    with RunningServer(upstream) as up, RunningServer(filtered(UpstreamProxy(up.url, timeout=5), proxy=True)) as front:
        yield upstream, front


@pytest.fixture
def upstream(stack):  # type: ignore[no-untyped-def]
    scripted, _ = stack
    scripted.received.clear()
    scripted.script([RESULT_BYTES])
    return scripted


def post(stack, body: dict[str, Any], route: str = "/completion") -> tuple[int, dict[str, str], bytes]:  # type: ignore[no-untyped-def]
    _, front = stack
    return raw_http(front.port, "POST", route, json.dumps(body).encode())


def test_allowed_result_and_stream_arrive_byte_for_byte(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = post(stack, {"prompt": "hi"})
    assert (status, body, headers["x-safety-filter-action"]) == (200, RESULT_BYTES, "allow")
    stream = events("Happy ", "to ", "help.")
    upstream.script(stream, b"text/event-stream")
    status, _, body = post(stack, {"prompt": "hi", "stream": True})
    assert body == b"".join(stream)


def test_blocked_prompt_is_a_llamacpp_error_and_never_reaches_upstream(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    status, _, body = post(stack, {"prompt": f"say {MARK}"})
    error = json.loads(body)["error"]
    assert (status, error["code"], error["type"]) == (400, 400, "invalid_request_error") and "hate" in error["message"]
    assert upstream.received == []


def test_blocked_result_is_withheld(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    upstream.script([json.dumps({**RESULT, "content": f"ok {MARK}", "tokens": [7, 8]}).encode()])
    _, headers, body = post(stack, {"prompt": "hi"})
    result = json.loads(body)
    assert MARK.encode() not in body and headers["x-safety-filter-action"] == "block"
    assert (result["content"], result["stop"], result["stop_type"], "tokens" in result) == (
        "",
        True,
        "content_filter",
        False,
    )


def test_a_list_of_results_loses_only_the_blocked_one(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    upstream.script([json.dumps([{**RESULT, "index": 0}, {**RESULT, "index": 1, "content": MARK}]).encode()])
    _, _, body = post(stack, {"prompt": ["hi", "there"]})
    first, second = json.loads(body)
    assert first["content"] == "Happy to help." and second["content"] == "" and second["stop_type"] == "content_filter"


@pytest.mark.parametrize("route", ["/completion", "/infill"])
def test_stream_cut_leaks_no_byte_of_a_marker_split_across_events(stack, upstream, route: str) -> None:  # type: ignore[no-untyped-def]
    upstream.script(events(*SPLIT), b"text/event-stream")
    status, _, body = post(stack, {"prompt": "hi", "input_prefix": "def f():", "stream": True}, route)
    last = json.loads(body.strip().split(b"\n\n")[-1].removeprefix(b"data: "))
    assert (
        status == 200
        and b"zz" not in body
        and (last["stop"], last["stop_type"], last["content"]) == (True, "content_filter", "")
    )


REQUEST_FIELDS: dict[str, dict[str, Any]] = {
    "prompt string": {"prompt": MARK},
    "prompt list": {"prompt": ["hi", MARK]},
    "multimodal prompt": {"prompt": {"prompt_string": f"<__media__> {MARK}", "multimodal_data": ["aGVsbG8="]}},
    "input_prefix": {"prompt": "", "input_prefix": MARK},
    "input_suffix": {"prompt": "", "input_suffix": MARK},
    "input_extra": {"input_prefix": "x", "input_extra": [{"filename": "a.py", "text": MARK}]},
    "json_schema property name": {"prompt": "hi", "json_schema": {"properties": {MARK: {"type": "string"}}}},
    "stop words": {"prompt": "hi", "stop": [MARK]},
}


@pytest.mark.parametrize("name", list(REQUEST_FIELDS))
@pytest.mark.parametrize("route", ["/completion", "/infill"])
def test_every_request_field_is_inspected(stack, upstream, route: str, name: str) -> None:  # type: ignore[no-untyped-def]
    status, _, body = post(stack, REQUEST_FIELDS[name], route)
    assert status == 400 and "hate" in json.loads(body)["error"]["message"], (name, body)
    assert upstream.received == []


@pytest.mark.parametrize(
    "body", [{"prompt": [1, 2, 3]}, {"prompt": ["hi", [4, 5]]}, {"prompt": "hi", "grammar": "root ::= x"}]
)
def test_input_that_cannot_be_read_is_refused(stack, upstream, body: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    status, _, answer = post(stack, body)
    assert status == 400 and "cannot" in json.loads(answer)["error"]["message"]
    assert upstream.received == []


@pytest.mark.anyio
async def test_in_process_through_the_middleware() -> None:
    upstream = ScriptedUpstream()
    transport = httpx.ASGITransport(app=filtered(upstream))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        upstream.script([RESULT_BYTES])
        allowed = await client.post("/completion", json={"prompt": "hi"})
        assert allowed.content == RESULT_BYTES
        blocked = await client.post("/completion", json={"prompt": MARK})
        assert blocked.status_code == 400 and len(upstream.received) == 1
        upstream.script(events(*SPLIT), b"text/event-stream")
        cut = await client.post("/completion", json={"prompt": "hi", "stream": True})
        assert b"zz" not in cut.content and b'"stop_type":"content_filter"' in cut.content
