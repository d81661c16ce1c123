"""The Anthropic Messages API end to end: the official `anthropic` client through a real uvicorn
running serve's stack (middleware + proxy) in front of a scripted upstream, and through the
middleware in-process; plus every request, response and stream field carrying the marker.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest

from safety_filter.serve.proxy import UpstreamProxy

from .helpers import RunningServer
from .test_attack_surface import MARK, ScriptedUpstream, filtered, raw_http

pytestmark = pytest.mark.slow  # real servers or real models

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [{"type": "text", "text": "Happy to help."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 4},
}
# Deliberately unusual spacing: an allowed answer must arrive byte for byte.
MESSAGE_BYTES = json.dumps(MESSAGE, indent=1).encode()


def message_with(*blocks: dict[str, Any]) -> bytes:
    return json.dumps({**MESSAGE, "content": list(blocks)}).encode()


def sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def stream(*blocks: tuple[dict[str, Any], list[dict[str, Any]]]) -> list[bytes]:
    """An Anthropic stream: each block's start, its deltas, its stop; one event per chunk."""
    start = {**MESSAGE, "content": [], "stop_reason": None}
    events = [sse({"type": "message_start", "message": start}), sse({"type": "ping"})]
    for index, (block, deltas) in enumerate(blocks):
        events.append(sse({"type": "content_block_start", "index": index, "content_block": block}))
        events += [sse({"type": "content_block_delta", "index": index, "delta": delta}) for delta in deltas]
        events.append(sse({"type": "content_block_stop", "index": index}))
    events.append(
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 9},
            }
        )
    )
    return [*events, sse({"type": "message_stop"})]


def text_stream(*pieces: str) -> list[bytes]:
    return stream(({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in pieces]))


SPLIT = ("Sure, here it is: zz", "ha", "te and more words.")


@pytest.fixture(scope="module")
def stack():  # type: ignore[no-untyped-def]
    upstream = ScriptedUpstream()
    with RunningServer(upstream) as up, RunningServer(filtered(UpstreamProxy(up.url, timeout=5), proxy=True)) as front:
        yield upstream, front


@pytest.fixture(params=["uvicorn", "in-process"])
async def env(request, stack, anyio_backend):  # type: ignore[no-untyped-def]
    """(upstream, client): the async client through serve on uvicorn, or through the middleware
    in-process over an ASGI transport."""
    if request.param == "uvicorn":
        upstream, front = stack
        upstream.received.clear()
        client = anthropic.AsyncAnthropic(api_key="k", base_url=front.url, max_retries=0)
    else:
        upstream = ScriptedUpstream()
        transport = httpx2.ASGITransport(app=filtered(upstream))
        client = anthropic.AsyncAnthropic(
            api_key="k", base_url="http://test", max_retries=0, http_client=httpx2.AsyncClient(transport=transport)
        )
    upstream.script([MESSAGE_BYTES])
    async with client:
        yield upstream, client


def ask(text: str) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": text}]}


@pytest.mark.anyio
async def test_allowed_message_arrives_byte_for_byte(env) -> None:  # type: ignore[no-untyped-def]
    upstream, client = env
    raw = await client.messages.with_raw_response.create(**ask("hello"))
    assert raw.http_response.content == MESSAGE_BYTES
    assert raw.headers["x-safety-filter-action"] == "allow"
    assert (await raw.parse()).content[0].text == "Happy to help."
    assert len(upstream.received) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("streamed", [False, True])
async def test_blocked_prompt_raises_bad_request_and_never_reaches_upstream(env, streamed: bool) -> None:  # type: ignore[no-untyped-def]
    upstream, client = env
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(**ask(f"say {MARK}"), stream=streamed)
    assert caught.value.status_code == 400
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "hate" in caught.value.message
    assert upstream.received == []


@pytest.mark.anyio
async def test_blocked_output_is_withheld_with_a_refusal_stop_reason(env) -> None:  # type: ignore[no-untyped-def]
    upstream, client = env
    upstream.script([message_with({"type": "text", "text": f"Fine. {MARK}."})])
    raw = await client.messages.with_raw_response.create(**ask("hello"))
    message = await raw.parse()
    assert MARK.encode() not in raw.http_response.content
    assert message.content == [] and message.stop_reason == "refusal"
    assert message.stop_details is not None and message.stop_details.type == "refusal"
    assert raw.headers["x-safety-filter-action"] == "block"


@pytest.mark.anyio
async def test_allowed_stream_arrives_byte_for_byte(env) -> None:  # type: ignore[no-untyped-def]
    upstream, client = env
    events = text_stream("Happy ", "to ", "help.")
    upstream.script(events, b"text/event-stream")
    async with client.messages.stream(**ask("hello")) as live:
        text = "".join([piece async for piece in live.text_stream])
        final = await live.get_final_message()
    assert text == "Happy to help." and final.stop_reason == "end_turn"
    raw = await client.messages.with_raw_response.create(**ask("hello"), stream=True)
    assert await raw.http_response.aread() == b"".join(events)


@pytest.mark.anyio
async def test_stream_cut_leaks_no_byte_of_a_marker_split_across_events(env) -> None:  # type: ignore[no-untyped-def]
    upstream, client = env
    upstream.script(text_stream(*SPLIT), b"text/event-stream")
    async with client.messages.stream(**ask("hello")) as live:
        text = "".join([piece async for piece in live.text_stream])
        final = await live.get_final_message()
    assert "zz" not in text
    assert final.stop_reason == "refusal"
    raw = await client.messages.with_raw_response.create(**ask("hello"), stream=True)
    body = await raw.http_response.aread()
    assert b"zz" not in body and body.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


# -- every field, through serve on uvicorn ----------------------------------------------------

TOOL = {
    "name": "lookup",
    "description": "Looks things up.",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
}
REQUEST_FIELDS: dict[str, dict[str, Any]] = {
    "system string": {"system": f"You say {MARK}."},
    "system blocks": {"system": [{"type": "text", "text": f"You say {MARK}."}]},
    "text block": {"messages": [{"role": "user", "content": [{"type": "text", "text": MARK}]}]},
    "tool_use input": {
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": MARK}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
        ]
    },
    "tool_use input key": {
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {MARK: 1}}]},
            {"role": "user", "content": "go on"},
        ]
    },
    "tool_result string": {
        "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": MARK}]}]
    },
    "tool_result blocks": {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": MARK}]}],
            }
        ]
    },
    "thinking": {
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": MARK, "signature": "sig"}, {"type": "text", "text": "ok"}],
            },
            {"role": "user", "content": "go on"},
        ]
    },
    "document": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": f"A file: {MARK}"},
                        "title": "notes",
                    },
                    {"type": "text", "text": "Summarise."},
                ],
            }
        ]
    },
    "tool description": {"tools": [{**TOOL, "description": MARK}]},
    "tool schema property name": {
        "tools": [{**TOOL, "input_schema": {"type": "object", "properties": {MARK: {"type": "string"}}}}]
    },
    "split across messages": {
        "messages": [
            {"role": "user", "content": "zzalpha"},
            {"role": "assistant", "content": [{"type": "text", "text": "zzbravo"}]},
        ]
    },
}


@pytest.mark.parametrize("name", list(REQUEST_FIELDS))
def test_every_request_field_is_inspected(stack, name: str) -> None:  # type: ignore[no-untyped-def]
    upstream, front = stack
    upstream.received.clear()
    body = {**ask("hello"), **REQUEST_FIELDS[name]}
    status, _, answer = raw_http(
        front.port, "POST", "/v1/messages", json.dumps(body).encode(), {"content-type": "application/json"}
    )
    assert status == 400, (name, answer)
    assert json.loads(answer)["error"]["type"] == "invalid_request_error"
    assert upstream.received == []


RESPONSE_BLOCKS: dict[str, dict[str, Any]] = {
    "text": {"type": "text", "text": f"a {MARK}"},
    "tool_use input": {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": MARK}},
    "tool_use input key": {"type": "tool_use", "id": "t1", "name": "lookup", "input": {MARK: "x"}},
    "thinking": {"type": "thinking", "thinking": MARK, "signature": "s"},
}


@pytest.mark.parametrize("name", list(RESPONSE_BLOCKS))
def test_every_response_block_is_inspected(stack, name: str) -> None:  # type: ignore[no-untyped-def]
    upstream, front = stack
    upstream.script([message_with({"type": "text", "text": "Here:"}, RESPONSE_BLOCKS[name])])
    status, _, answer = raw_http(front.port, "POST", "/v1/messages", json.dumps(ask("hi")).encode())
    assert status == 200 and MARK.encode() not in answer
    message = json.loads(answer)
    assert message["content"] == [] and message["stop_reason"] == "refusal"


STREAMS: dict[str, list[bytes]] = {
    "text_delta": text_stream(*SPLIT),
    "thinking_delta": stream(
        ({"type": "thinking", "thinking": ""}, [{"type": "thinking_delta", "thinking": p} for p in SPLIT])
    ),
    "input_json_delta": stream(
        (
            {"type": "tool_use", "id": "t1", "name": "lookup", "input": {}},
            [{"type": "input_json_delta", "partial_json": p} for p in ('{"q": "zz', "ha", 'te"}')],
        )
    ),
    "start block text": stream(({"type": "text", "text": "Sure: zz"}, [{"type": "text_delta", "text": "hate."}])),
}


def interleaved() -> list[bytes]:
    """Two blocks whose deltas interleave: the marker is split inside block 0 only."""
    events = stream()[:2]
    events += [
        sse({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}) for i in (0, 1)
    ]
    for index, piece in ((0, "I say zz"), (1, "unrelated"), (0, "hate")):
        events.append(
            sse({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}})
        )
    return events + stream()[-2:]


STREAMS["interleaved blocks"] = interleaved()


@pytest.mark.parametrize("name", list(STREAMS))
def test_stream_fields_never_leak(stack, name: str) -> None:  # type: ignore[no-untyped-def]
    upstream, front = stack
    upstream.script(STREAMS[name], b"text/event-stream")
    status, _, body = raw_http(front.port, "POST", "/v1/messages", json.dumps({**ask("hi"), "stream": True}).encode())
    assert status == 200 and b"zz" not in body, (name, body[-600:])
    assert b'"stop_reason":"refusal"' in body and body.endswith(b'data: {"type":"message_stop"}\n\n')


def test_count_tokens_and_batches_are_inspected_or_refused(stack) -> None:  # type: ignore[no-untyped-def]
    upstream, front = stack
    upstream.received.clear()
    status, _, _ = raw_http(front.port, "POST", "/v1/messages/count_tokens", json.dumps(ask(MARK)).encode())
    assert status == 400
    status, _, _ = raw_http(
        front.port, "POST", "/v1/messages/batches", json.dumps({"requests": [{"params": ask(MARK)}]}).encode()
    )
    assert status == 501
    assert upstream.received == []


@pytest.mark.anyio
async def test_annotations_ride_along_and_the_client_still_parses() -> None:
    upstream = ScriptedUpstream()
    upstream.script([MESSAGE_BYTES])
    transport = httpx2.ASGITransport(app=filtered(upstream, annotations="always"))
    http = httpx2.AsyncClient(transport=transport)
    async with anthropic.AsyncAnthropic(api_key="k", base_url="http://test", max_retries=0, http_client=http) as client:
        raw = await client.messages.with_raw_response.create(**ask("hello"))
        message = await raw.parse()
    body = json.loads(raw.http_response.content)
    assert raw.headers["x-safety-filter-action"] == "annotate" and message.content[0].text == "Happy to help."
    assert body["content_filter_results"]["hate"]["filtered"] is False and "prompt_filter_results" in body


@pytest.mark.anyio
async def test_a_prompt_that_cannot_be_inspected_is_an_anthropic_server_error() -> None:
    upstream = ScriptedUpstream()
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=filtered(upstream, fail_mode="closed")))
    async with anthropic.AsyncAnthropic(api_key="k", base_url="http://test", max_retries=0, http_client=http) as client:
        with pytest.raises(anthropic.InternalServerError) as caught:
            await client.messages.create(**ask("zzboom"))
    assert caught.value.status_code == 503 and caught.value.body["error"]["type"] == "overloaded_error"
    assert upstream.received == []
