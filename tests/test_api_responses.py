"""The OpenAI Responses API, end to end: the official `openai` client (`responses.create`,
streamed and not, and `AzureOpenAI` / the Azure v1 path) against a real uvicorn running `serve`'s
stack in front of a scripted upstream, and the middleware in-process.

Harmful text is only the fake detector's marker (see tests/helpers); the phrase detector flags
`zzalpha zzbravo` however it is split or spaced.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from safety_filter.api.responses import OpenAIResponses
from safety_filter.asgi.stream import StreamGuard
from safety_filter.findings import Verdict
from safety_filter.policy import StreamingSettings, decide
from safety_filter.serve.proxy import UpstreamProxy

from .helpers import RunningServer, make_policy
from .test_attack_surface import MARK, ScriptedUpstream, filtered, raw_http

TEXT = "Happy to help with that."


def reply(output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "m",
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        **extra,
    }


def message(text: str, item_id: str = "msg_1") -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def sse(events: list[dict[str, Any]]) -> list[bytes]:
    """Events as OpenAI sends them (an `event:` line and a `data:` line), sequence-numbered."""
    return [
        f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': n})}\n\n".encode()
        for n, e in enumerate(events)
    ]


def message_stream(pieces: list[str], *, done_text: str | None = None, final_text: str | None = None) -> list[bytes]:
    """A message streamed in `pieces`; the `.done` and `response.completed` events repeat the
    full text (or `done_text` / `final_text`, to test that those repeats are inspected)."""
    full = "".join(pieces)
    done = full if done_text is None else done_text
    ids = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": reply([], status="in_progress")},
        {"type": "response.in_progress", "response": reply([], status="in_progress")},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**message(""), "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **ids, "part": {"type": "output_text", "text": "", "annotations": []}},
        *({"type": "response.output_text.delta", **ids, "delta": piece, "logprobs": []} for piece in pieces),
        {"type": "response.output_text.done", **ids, "text": done, "logprobs": []},
        {"type": "response.content_part.done", **ids, "part": {"type": "output_text", "text": done, "annotations": []}},
        {"type": "response.output_item.done", "output_index": 0, "item": message(done)},
        {"type": "response.completed", "response": reply([message(full if final_text is None else final_text)])},
    ]
    return sse(events)


@pytest.fixture(scope="module")
def stack():  # type: ignore[no-untyped-def]
    upstream = ScriptedUpstream()
    with RunningServer(upstream) as up, RunningServer(filtered(UpstreamProxy(up.url, timeout=5), proxy=True)) as front:
        yield upstream, front


@pytest.fixture
def upstream(stack):  # type: ignore[no-untyped-def]
    app, _ = stack
    app.received.clear()
    app.script([json.dumps(reply([message(TEXT)])).encode()])
    return app


@pytest.fixture
def client(stack):  # type: ignore[no-untyped-def]
    with openai.OpenAI(base_url=f"{stack[1].url}/v1", api_key="k", max_retries=0) as client:
        yield client


def post(stack, body: dict[str, Any], path: str = "/v1/responses") -> tuple[int, dict[str, str], bytes]:  # type: ignore[no-untyped-def]
    return raw_http(stack[1].port, "POST", path, json.dumps(body).encode(), {"content-type": "application/json"})


# -- allowed -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_allowed_response_arrives_byte_for_byte(stack, upstream, client) -> None:  # type: ignore[no-untyped-def]
    scripted = (
        b'{ "id":"resp_1", "object":"response",  "output":[%s], "status":"completed" }'
        % json.dumps(message(TEXT)).encode()
    )
    upstream.script([scripted])
    raw = client.responses.with_raw_response.create(model="m", input="Say something kind.")
    assert raw.headers["x-safety-filter-action"] == "allow"
    assert raw.http_response.content == scripted
    assert raw.parse().output_text == TEXT
    assert upstream.received[-1][1] == "/v1/responses"


@pytest.mark.slow
def test_allowed_stream_arrives_byte_for_byte(stack, upstream, client) -> None:  # type: ignore[no-untyped-def]
    events = message_stream(["Happy ", "to help ", "with that."])
    upstream.script(events, b"text/event-stream")
    with httpx.stream(
        "POST", f"{stack[1].url}/v1/responses", json={"model": "m", "input": "hi", "stream": True}
    ) as response:
        assert response.headers["x-safety-filter-action"] == "allow"
        assert response.read() == b"".join(events)
    seen = list(client.responses.create(model="m", input="hi", stream=True))
    assert [e.type for e in seen][-1] == "response.completed"
    assert "".join(e.delta for e in seen if e.type == "response.output_text.delta") == TEXT


@pytest.mark.slow
def test_deltas_of_different_items_are_never_joined(stack, upstream, client) -> None:  # type: ignore[no-untyped-def]
    """Two output items interleave their deltas: each half of the phrase is in its own item."""
    first, second = (
        {"output_index": 0, "content_index": 0, "item_id": "a"},
        {"output_index": 1, "content_index": 0, "item_id": "b"},
    )
    events = sse(
        [
            {"type": "response.output_text.delta", **first, "delta": "zzalpha"},
            {"type": "response.output_text.delta", **second, "delta": " zzbravo"},
            {"type": "response.completed", "response": reply([message("zzalpha", "a"), message(" zzbravo", "b")])},
        ]
    )
    upstream.script(events, b"text/event-stream")
    seen = list(client.responses.create(model="m", input="hi", stream=True))
    assert seen[-1].type == "response.completed"


# -- blocked prompt ----------------------------------------------------------------------------


@pytest.mark.slow
def test_blocked_prompt_raises_bad_request_and_never_reaches_the_model(stack, upstream, client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input=f"write {MARK}")
    assert caught.value.code == "content_filter"
    assert caught.value.response.headers["x-safety-filter-action"] == "block"
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="m", input=f"write {MARK}", stream=True)
    assert upstream.received == []


def _input(*items: dict[str, Any]) -> dict[str, Any]:
    return {"model": "m", "input": list(items)}


def _schema(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


REQUEST_FIELDS = {
    "input string": {"model": "m", "input": MARK},
    "easy message": _input({"role": "user", "content": MARK}),
    "input_text part": _input({"type": "message", "role": "user", "content": [{"type": "input_text", "text": MARK}]}),
    "assistant output_text": _input(
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": MARK, "annotations": []}]}
    ),
    "refusal part": _input({"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": MARK}]}),
    "function_call arguments": _input(
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": json.dumps({"q": MARK})}
    ),
    "function_call_output": _input({"type": "function_call_output", "call_id": "c", "output": f"result {MARK}"}),
    "function_call_output parts": _input(
        {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": MARK}]}
    ),
    "reasoning summary": _input({"type": "reasoning", "id": "r", "summary": [{"type": "summary_text", "text": MARK}]}),
    "reasoning content": _input(
        {"type": "reasoning", "id": "r", "summary": [], "content": [{"type": "reasoning_text", "text": MARK}]}
    ),
    "custom tool call": _input({"type": "custom_tool_call", "call_id": "c", "name": "sql", "input": MARK}),
    "custom tool output": _input({"type": "custom_tool_call_output", "call_id": "c", "output": MARK}),
    "instructions": {"model": "m", "input": "hi", "instructions": f"Always say {MARK}."},
    "tool description": {
        "model": "m",
        "input": "hi",
        "tools": [{"type": "function", "name": "f", "description": MARK, "parameters": _schema()}],
    },
    "tool property name": {
        "model": "m",
        "input": "hi",
        "tools": [{"type": "function", "name": "f", "parameters": _schema(**{MARK: {"type": "string"}})}],
    },
    "tool property description": {
        "model": "m",
        "input": "hi",
        "tools": [{"type": "function", "name": "f", "parameters": _schema(q={"type": "string", "description": MARK})}],
    },
    "custom tool grammar": {
        "model": "m",
        "input": "hi",
        "tools": [
            {
                "type": "custom",
                "name": "g",
                "format": {"type": "grammar", "syntax": "lark", "definition": f'start: "{MARK}"'},
            }
        ],
    },
    "text.format description": {
        "model": "m",
        "input": "hi",
        "text": {"format": {"type": "json_schema", "name": "s", "description": MARK, "schema": _schema()}},
    },
    "text.format property": {
        "model": "m",
        "input": "hi",
        "text": {"format": {"type": "json_schema", "name": "s", "schema": _schema(**{MARK: {"type": "string"}})}},
    },
    "prompt template variable": {"model": "m", "prompt": {"id": "pmpt_1", "variables": {"topic": MARK}}},
    "phrase split across items": _input({"role": "user", "content": "zzalpha"}, {"role": "user", "content": "zzbravo"}),
    "phrase split across parts": _input(
        {
            "role": "user",
            "content": [{"type": "input_text", "text": "zzalpha"}, {"type": "input_text", "text": "zzbravo"}],
        }
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REQUEST_FIELDS))
def test_every_request_field_a_model_reads_is_inspected(stack, upstream, name: str) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = post(stack, REQUEST_FIELDS[name])
    assert (status, headers["x-safety-filter-action"]) == (400, "block"), body
    assert json.loads(body)["error"]["code"] == "content_filter"
    assert upstream.received == []


# -- stored history ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "request_fields",
    [
        {"input": "hello", "previous_response_id": "resp_0"},
        {"input": "hello", "conversation": "conv_1"},
        {"input": "hello", "conversation": {"id": "conv_1"}},
        {"input": "hello", "background": True},
        {"input": [{"type": "item_reference", "id": "msg_0"}]},
    ],
)
def test_history_the_filter_cannot_see_is_refused_by_default(
    stack, upstream, client, request_fields: dict[str, Any]
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", extra_body=request_fields)
    assert "refused by policy" in caught.value.message and "passthrough_fields" in caught.value.message
    assert upstream.received == []


@pytest.mark.anyio
async def test_a_policy_that_passes_history_inspects_the_new_input() -> None:
    upstream = ScriptedUpstream()
    upstream.script([json.dumps(reply([message(TEXT)])).encode()])
    app = filtered(upstream, passthrough_fields=["previous_response_id", "conversation"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        allowed = await http.post(
            "/v1/responses", json={"model": "m", "input": "and then?", "previous_response_id": "resp_0"}
        )
        blocked = await http.post("/v1/responses", json={"model": "m", "input": MARK, "conversation": "conv_1"})
        background = await http.post("/v1/responses", json={"model": "m", "input": "hi", "background": True})
    assert allowed.status_code == 200 and allowed.json()["output"][0]["content"][0]["text"] == TEXT
    assert blocked.status_code == 400 and blocked.json()["error"]["code"] == "content_filter"
    assert background.status_code == 400  # not passed by this policy
    assert len(upstream.received) == 1


# -- blocked output ----------------------------------------------------------------------------

OUTPUTS = {
    "output_text": [message(f"Sure: {MARK}")],
    "refusal": [{"type": "message", "id": "m", "role": "assistant", "content": [{"type": "refusal", "refusal": MARK}]}],
    "reasoning summary": [
        {"type": "reasoning", "id": "r", "summary": [{"type": "summary_text", "text": MARK}]},
        message(TEXT),
    ],
    "reasoning content": [
        {"type": "reasoning", "id": "r", "summary": [], "content": [{"type": "reasoning_text", "text": MARK}]},
        message(TEXT),
    ],
    "function_call arguments": [
        {"type": "function_call", "id": "f", "call_id": "c", "name": "post", "arguments": json.dumps({"text": MARK})}
    ],
    "custom tool call": [{"type": "custom_tool_call", "id": "f", "call_id": "c", "name": "sql", "input": MARK}],
    "second item": [message(TEXT), message(MARK, "msg_2")],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OUTPUTS))
def test_blocked_output_is_an_incomplete_response_with_no_text(stack, upstream, client, name: str) -> None:  # type: ignore[no-untyped-def]
    upstream.script([json.dumps(reply(OUTPUTS[name])).encode()])
    raw = client.responses.with_raw_response.create(model="m", input="hi")
    assert raw.headers["x-safety-filter-action"] == "block"
    assert MARK.encode() not in raw.http_response.content
    response = raw.parse()
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "content_filter"
    assert response.output == [] and response.output_text == ""


@pytest.mark.slow
def test_output_text_convenience_field_is_inspected(stack, upstream, client) -> None:  # type: ignore[no-untyped-def]
    upstream.script([json.dumps(reply([message(TEXT)], output_text=MARK)).encode()])
    raw = client.responses.with_raw_response.create(model="m", input="hi")
    assert MARK.encode() not in raw.http_response.content
    assert raw.parse().incomplete_details.reason == "content_filter"  # type: ignore[union-attr]


# -- blocked stream ----------------------------------------------------------------------------

STREAMS = {
    "marker split across deltas": message_stream(["Well. ", "zz", "h", "ate", " indeed"]),
    "only in the .done repeat": message_stream(["Fine ", "words."], done_text=MARK),
    "only in response.completed": message_stream(["Fine ", "words."], done_text="Fine words.", final_text=MARK),
    "reasoning summary deltas": sse(
        [
            {
                "type": "response.reasoning_summary_text.delta",
                "item_id": "r",
                "output_index": 0,
                "summary_index": 0,
                "delta": "zzh",
            },
            {
                "type": "response.reasoning_summary_text.delta",
                "item_id": "r",
                "output_index": 0,
                "summary_index": 0,
                "delta": "ate",
            },
            {
                "type": "response.reasoning_summary_text.done",
                "item_id": "r",
                "output_index": 0,
                "summary_index": 0,
                "text": "zzhate",
            },
        ]
    ),
    "reasoning text deltas": sse(
        [
            {
                "type": "response.reasoning_text.delta",
                "item_id": "r",
                "output_index": 0,
                "content_index": 0,
                "delta": "zzh",
            },
            {
                "type": "response.reasoning_text.delta",
                "item_id": "r",
                "output_index": 0,
                "content_index": 0,
                "delta": "ate",
            },
        ]
    ),
    "function_call_arguments deltas": sse(
        [
            {"type": "response.function_call_arguments.delta", "item_id": "f", "output_index": 1, "delta": '{"t":"zzh'},
            {"type": "response.function_call_arguments.delta", "item_id": "f", "output_index": 1, "delta": 'ate"}'},
        ]
    ),
    "refusal deltas": sse(
        [
            {"type": "response.refusal.delta", "item_id": "m", "output_index": 0, "content_index": 0, "delta": "zz"},
            {"type": "response.refusal.delta", "item_id": "m", "output_index": 0, "content_index": 0, "delta": "hate"},
        ]
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STREAMS))
def test_blocked_stream_ends_incomplete_and_leaks_no_piece(stack, upstream, client, name: str) -> None:  # type: ignore[no-untyped-def]
    upstream.script(STREAMS[name], b"text/event-stream")
    with httpx.stream(
        "POST", f"{stack[1].url}/v1/responses", json={"model": "m", "input": "hi", "stream": True}
    ) as response:
        raw = response.read()  # (headers went out "allow" with the first events released)
    assert b"zz" not in raw and b'"delta": "ate' not in raw and b'"delta": "hate' not in raw
    seen = list(client.responses.create(model="m", input="hi", stream=True))
    last = seen[-1]
    assert last.type == "response.incomplete"
    assert last.response.status == "incomplete" and last.response.output == []
    assert last.response.incomplete_details is not None and last.response.incomplete_details.reason == "content_filter"
    assert all(e.type != "response.completed" for e in seen)


@pytest.mark.anyio
async def test_stream_cut_keeps_the_checked_prefix_in_order() -> None:
    """In-process, each event is its own body message: text checked before the block is
    released (minus the holdback), in order, then the incomplete event."""
    upstream = ScriptedUpstream()
    prefix = ["This sentence is fine and long enough to be released first. "] * 4
    upstream.script(message_stream([*prefix, "zz", "hate"]), b"text/event-stream")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=filtered(upstream)), base_url="http://t") as http:
        client = openai.AsyncOpenAI(base_url="http://t/v1", api_key="k", http_client=http, max_retries=0)
        seen = [event async for event in await client.responses.create(model="m", input="hi", stream=True)]
    text = "".join(e.delta for e in seen if e.type == "response.output_text.delta")
    assert text and "".join(prefix).startswith(text)
    assert seen[0].type == "response.created" and seen[-1].type == "response.incomplete"
    numbers = [e.sequence_number for e in seen]
    assert numbers == sorted(set(numbers))


# -- Azure -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_azure_v1_path_and_api_version_path(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    v1 = openai.OpenAI(base_url=f"{stack[1].url}/openai/v1/", api_key="k", max_retries=0)
    azure = openai.AzureOpenAI(
        azure_endpoint=stack[1].url, api_key="k", api_version="2025-04-01-preview", max_retries=0
    )
    with v1, azure:
        assert v1.responses.create(model="dep", input="hi").output_text == TEXT
        assert upstream.received[-1][1] == "/openai/v1/responses"
        with pytest.raises(openai.BadRequestError) as caught:
            azure.responses.create(model="dep", input=MARK)
        assert caught.value.code == "content_filter"
        upstream.script([json.dumps(reply([message(MARK)])).encode()])
        assert azure.responses.create(model="dep", input="hi").incomplete_details.reason == "content_filter"  # type: ignore[union-attr]
        assert upstream.received[-1][1] == "/openai/responses"
        upstream.script(message_stream(["zz", "hate"]), b"text/event-stream")
        assert list(v1.responses.create(model="dep", input="hi", stream=True))[-1].type == "response.incomplete"


@pytest.mark.slow
def test_other_responses_routes_are_refused_not_passed(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    for path in ("/v1/responses/compact", "/v1/responses/input_tokens", "/openai/v1/responses/resp_1/cancel"):
        status, _, _ = post(stack, {"model": "m", "input": MARK}, path)
        assert status == 501, path
    assert upstream.received == []


# -- in-process --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_through_the_middleware_in_process() -> None:
    upstream = ScriptedUpstream()
    app = filtered(upstream)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        client = openai.AsyncOpenAI(base_url="http://t/v1", api_key="k", http_client=http, max_retries=0)
        upstream.script([json.dumps(reply([message(TEXT)])).encode()])
        assert (await client.responses.create(model="m", input="hi")).output_text == TEXT
        upstream.script([json.dumps(reply([message(MARK)])).encode()])
        assert (await client.responses.create(model="m", input="hi")).status == "incomplete"
        upstream.script(message_stream(["zz", "hate"]), b"text/event-stream")
        events = [event async for event in await client.responses.create(model="m", input="hi", stream=True)]
        assert events[-1].type == "response.incomplete"
        assert all(MARK not in getattr(e, "delta", "") for e in events)
        with pytest.raises(openai.BadRequestError):
            await client.responses.create(model="m", input=MARK)


@pytest.mark.anyio
async def test_annotated_output_is_kept_with_azure_results() -> None:
    upstream = ScriptedUpstream()
    upstream.script([json.dumps(reply([message("a zzsex scene")])).encode()])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=filtered(upstream)), base_url="http://t") as http:
        response = await http.post("/v1/responses", json={"model": "m", "input": "write a scene"})
    assert response.headers["x-safety-filter-action"] == "annotate"
    body = response.json()
    assert body["status"] == "completed" and body["output"][0]["content"][0]["text"] == "a zzsex scene"
    assert body["output"][0]["content_filter_results"]["sexual"] == {"filtered": True, "severity": "medium"}
    assert body["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False


@pytest.mark.slow
def test_azure_deployment_path_is_inspected(stack, upstream) -> None:  # type: ignore[no-untyped-def]
    status, _, body = post(stack, {"model": "dep", "input": MARK}, "/openai/deployments/dep/responses")
    assert status == 400 and json.loads(body)["error"]["code"] == "content_filter"
    status, _, body = post(stack, {"model": "dep", "input": "hi"}, "/openai/deployments/dep/responses")
    assert status == 200 and json.loads(body)["output"][0]["content"][0]["text"] == TEXT
    assert [path for _, path, _ in upstream.received] == ["/openai/deployments/dep/responses"]


def test_done_events_say_which_channels_are_whole() -> None:
    """The adapter's side of `complete_channels`: a `.done` closes its own part's deltas (not
    another part's), a repeat's channel is whole at once, and a delta's own channel never is."""
    adapter = OpenAIResponses()
    part = {"item_id": "r", "output_index": 0, "summary_index": 1}
    delta = {"type": "response.reasoning_summary_text.delta", **part, "delta": "thinking"}
    done = {"type": "response.reasoning_summary_text.done", **part, "text": "thinking"}
    other = {"type": "response.reasoning_summary_text.delta", **part, "summary_index": 2, "delta": "more"}
    [(delta_channel, _)] = adapter.event_texts(delta)
    [(done_channel, _)] = adapter.event_texts(done)
    assert adapter.complete_channels(delta) == []
    assert set(adapter.complete_channels(done)) == {delta_channel, done_channel}
    assert adapter.event_texts(other)[0][0] not in adapter.complete_channels(done)


@pytest.mark.anyio
async def test_a_finished_item_does_not_hold_back_the_next() -> None:
    """Needs the guard to honour `complete_channels`: the message streams while it is written."""
    summary = "I weigh the question carefully and at some length before answering. " * 3
    words = ["This is the answer, word by word. "] * 8
    part = {"item_id": "r", "output_index": 0, "summary_index": 0}
    ids = {"item_id": "m", "output_index": 1, "content_index": 0}
    events = sse(
        [
            {"type": "response.reasoning_summary_text.delta", **part, "delta": summary},
            {"type": "response.reasoning_summary_text.done", **part, "text": summary},
            *({"type": "response.output_text.delta", **ids, "delta": w} for w in words),
        ]
    )
    guard = StreamGuard(_allow, StreamingSettings(), OpenAIResponses())
    released = [await guard.feed(event) for event in events]
    assert b"response.reasoning_summary_text.done" in b"".join(released[:2])
    assert b"response.output_text.delta" in b"".join(released[:-1])


async def _allow(texts: list[str]) -> list[Verdict]:
    return [decide((), make_policy(), "completion") for _ in texts]


@pytest.mark.anyio
async def test_the_stream_helper_reads_a_cut_stream_to_its_end() -> None:
    """Needs the guard to keep the first event's response id: the helper checks it."""
    upstream = ScriptedUpstream()
    upstream.script(message_stream(["Fine. "] * 30 + ["zz", "hate"]), b"text/event-stream")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=filtered(upstream)), base_url="http://t") as http:
        client = openai.AsyncOpenAI(base_url="http://t/v1", api_key="k", http_client=http, max_retries=0)
        async with client.responses.stream(model="m", input="hi") as stream:
            events = [event async for event in stream]
    assert events[-1].type == "response.incomplete" and events[-1].response.id == "resp_1"
