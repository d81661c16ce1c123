"""The OpenAI wire formats (chat completions and legacy completions, also as Azure OpenAI and
vLLM / llama.cpp / Ollama serve them under `/v1`): two adapters.

Blocks are answered as Azure OpenAI answers them (a 400 `content_filter` error for a prompt, a
`content_filter` finish reason for an output), so the official clients raise or read them
unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from safety_filter.api.azure import (
    content_filter_results,
    filter_error_body,
    prompt_blocked_body,
    prompt_filter_results,
)
from safety_filter.api.base import Adapter, Channel, OutputText
from safety_filter.api.fields import CONTROL_KEYS, check_strings, consecutive, joined, leaves, refuse_unreadable
from safety_filter.errors import ShapeError
from safety_filter.findings import Verdict


def error_body(status: int, message: str, code: str, *, error_type: str = "invalid_request_error") -> dict[str, Any]:
    """An OpenAI-style error body for malformed input and upstream failures."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code, "status": status}}


def sse_event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class _OpenAI(Adapter):
    """What chat and legacy completions share: choices, Azure annotations, `[DONE]`."""

    delta_field = "delta"
    chunk_object = "chat.completion.chunk"

    def response_texts(self, body: Any) -> tuple[list[OutputText], str]:
        """Everything a client could show of each choice: content, refusal, reasoning
        (`reasoning_content`, `reasoning`), audio transcripts, tool-call names and arguments;
        plus every text outside the choices."""
        if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
            raise ShapeError("the response has no 'choices' list")
        outputs = []
        for position, choice in enumerate(body["choices"]):
            if not isinstance(choice, dict):
                raise ShapeError(f"choices[{position}] must be an object")
            index = choice.get("index", position)
            outputs.append(OutputText(position, index if isinstance(index, int) else position, joined(choice)))
        return outputs, joined({key: value for key, value in body.items() if key != "choices"})

    def withhold(
        self, body: dict[str, Any], verdicts: Mapping[int, Verdict], prompt: Verdict | None, *, annotate: bool
    ) -> dict[str, Any]:
        for position, choice in enumerate(body.get("choices", [])):
            verdict = verdicts.get(position)
            if verdict is None or not isinstance(choice, dict):
                continue
            if verdict.blocked:
                withhold(choice)
            if verdict.blocked or annotate:
                choice["content_filter_results"] = content_filter_results(verdict)
        if prompt is not None and annotate:
            body["prompt_filter_results"] = prompt_filter_results(prompt)
        return body

    def event_texts(self, event: Any) -> list[tuple[Channel, str]]:
        if not isinstance(event, dict):
            raise ShapeError("a stream event must carry a JSON object")
        choices = event.get("choices") or []
        if not isinstance(choices, list):
            raise ShapeError("'choices' must be a list")
        out: list[tuple[Channel, str]] = []
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                raise ShapeError(f"choices[{position}] must be an object")
            index = choice.get("index", position)
            index = index if isinstance(index, int) else position
            out.extend(((index, path), text) for path, text in leaves(choice, ""))
        rest = {key: value for key, value in event.items() if key != "choices"}
        out.extend(((0, path), text) for path, text in leaves(rest, "chunk"))
        return out

    def error(
        self, status: int, message: str, code: str, *, error_type: str = "invalid_request_error"
    ) -> dict[str, Any]:
        return error_body(status, message, code, error_type=error_type)

    def prompt_blocked(self, verdict: Verdict) -> tuple[int, dict[str, Any]]:
        return 400, prompt_blocked_body(verdict)

    def prompt_unchecked(self, verdict: Verdict) -> tuple[int, dict[str, Any]]:
        return 503, filter_error_body(verdict)

    def completion_blocked(self, verdict: Verdict) -> tuple[int, dict[str, Any]]:
        body = prompt_blocked_body(verdict)
        body["error"]["param"] = "completion"
        body["error"]["message"] = "The response was filtered by safety-filter's content management policy."
        return (502 if verdict.error else 400), body

    def stream_blocked(self, verdict: Verdict, index: int, last_event: Mapping[str, Any]) -> bytes:
        choice: dict[str, Any] = {"index": index, **self._empty_delta(), "finish_reason": "content_filter"}
        choice["content_filter_results"] = content_filter_results(verdict)
        return sse_event(self._chunk([choice], last_event)) + sse_event("[DONE]")

    def stream_annotation(self, index: int, verdict: Verdict, last_event: Mapping[str, Any]) -> bytes:
        choice: dict[str, Any] = {"index": index, **self._empty_delta(), "finish_reason": None}
        choice["content_filter_results"] = content_filter_results(verdict)
        return sse_event(self._chunk([choice], last_event))

    def stream_prompt_annotation(self, verdict: Verdict) -> bytes:
        first = {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [],
            "prompt_filter_results": prompt_filter_results(verdict),
        }
        return sse_event(first)

    def is_end_event(self, data: str) -> bool:
        return data.strip() == "[DONE]"

    def _empty_delta(self) -> dict[str, Any]:
        return {"delta": {}}

    def _chunk(self, choices: list[dict[str, Any]], last: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": last.get("id", ""),
            "object": last.get("object", self.chunk_object),
            "created": last.get("created", 0),
            "model": last.get("model", ""),
            "choices": choices,
        }


class OpenAIChat(_OpenAI):
    """`POST /v1/chat/completions` and its Azure spellings."""

    name = "openai-chat"
    routes = (
        r"(?:/v1)?/chat/completions/?",
        r"/openai/deployments/[^/]+/(?:extensions/)?chat/completions/?",
        r"/openai(?:/v1)?/chat/completions/?",
    )

    def request_texts(self, body: Any, passthrough_fields: Iterable[str] = ()) -> list[str]:
        """Every text in a request that a model would read, one text per message field.

        History (earlier user and assistant turns), system and tool messages are all inspected:
        an attacker controls every one of them. Each message's content parts are joined as the
        upstream joins them (one text), and so are runs of consecutive messages, so a sentence
        split across parts or messages is read whole. Everything outside `messages` (tool
        definitions and their schemas, `response_format`, documents...) is read as one text per
        field.
        """
        body = _request_object(body, passthrough_fields)
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise ShapeError("'messages' must be a list of message objects")
        texts: list[str] = []
        contents = []
        for position, message in enumerate(messages):
            if not isinstance(message, dict):
                raise ShapeError(f"messages[{position}] must be an object")
            message_texts = _message_texts(message, f"messages[{position}]")
            texts.extend(message_texts)
            contents.append("\n".join(message_texts))
        texts.extend(consecutive(contents))
        if "prompt" in body:
            texts.extend(_prompt_field(body.get("prompt"), required=False))
        return [t for t in texts + _other_fields(body, ("messages", "prompt")) if t]


class OpenAICompletions(_OpenAI):
    """`POST /v1/completions` (legacy text completions; `prompt`, `suffix`)."""

    name = "openai-completions"
    routes = (
        r"(?:/v1)?/completions/?",
        r"/openai/deployments/[^/]+/completions/?",
        r"/openai(?:/v1)?/completions/?",
        r"(?:/v1)?/engines/[^/]+/completions/?",
    )
    chunk_object = "text_completion"

    def request_texts(self, body: Any, passthrough_fields: Iterable[str] = ()) -> list[str]:
        body = _request_object(body, passthrough_fields)
        texts = _prompt_field(body.get("prompt"), required=True)
        return [t for t in texts + _other_fields(body, ("prompt",)) if t]

    def _empty_delta(self) -> dict[str, Any]:
        return {"text": ""}


def _request_object(body: Any, passthrough_fields: Iterable[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ShapeError("the request body must be a JSON object")
    refuse_unreadable(body, tuple(passthrough_fields))
    check_strings(body)
    return body


def _other_fields(body: dict[str, Any], done: tuple[str, ...]) -> list[str]:
    """Every other field, one text each (schemas with their property names)."""
    return [
        joined(value, keys=isinstance(value, dict | list))
        for key, value in body.items()
        if key not in done and key not in CONTROL_KEYS
    ]


def _prompt_field(prompt: Any, *, required: bool) -> list[str]:
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return list(prompt)
    if isinstance(prompt, list) and prompt and all(isinstance(p, int | list) for p in prompt):
        raise ShapeError("'prompt' as token ids cannot be inspected; send text")
    if required or prompt is not None:
        raise ShapeError("'prompt' must be a string or a list of strings")
    return []


def _message_texts(message: Mapping[str, Any], where: str) -> list[str]:
    """A message's content (parts joined) and each other field it carries (name, reasoning, tool calls)."""
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise ShapeError(f"{where}.content must be a string, a list of content parts or null")
    if isinstance(content, list):
        for position, part in enumerate(content):
            if not isinstance(part, dict | str):
                raise ShapeError(f"{where}.content[{position}] must be an object or a string")
            if (
                isinstance(part, dict)
                and part.get("type") in ("text", "input_text", "output_text")
                and not isinstance(part.get("text"), str)
            ):
                raise ShapeError(f"{where}.content[{position}].text must be a string")
    texts = [joined(content)]
    for key, value in message.items():
        if key == "content" or key in CONTROL_KEYS:
            continue
        texts.append(_arguments_text(value) if key in ("tool_calls", "function_call") else joined(value))
    return [t for t in texts if t]


def _arguments_text(value: Any) -> str:
    """Tool calls: string arguments as sent, object arguments as the JSON the upstream renders."""
    calls = value if isinstance(value, list) else [value]
    out = []
    for call in calls:
        if not isinstance(call, dict):
            out.append(joined(call))
            continue
        for key, inner in call.items():
            if key in CONTROL_KEYS:
                continue
            if isinstance(inner, dict) and "arguments" in inner and not isinstance(inner["arguments"], str):
                inner = {**inner, "arguments": json.dumps(inner["arguments"], ensure_ascii=False)}
            out.append(joined(inner))
    return "\n".join(t for t in out if t)


def withhold(choice: dict[str, Any]) -> None:
    """Remove every field that carries a choice's text and mark it filtered, as Azure does.

    Only the choice's index and (for chat) the message role survive: content, refusal,
    reasoning, audio, tool calls and logprobs (which repeat every token) all go.
    """
    message = choice.get("message")
    kept = {key: choice[key] for key in ("index",) if key in choice}
    choice.clear()
    choice.update(kept)
    if isinstance(message, dict):
        choice["message"] = {"role": message.get("role", "assistant"), "content": None}
    else:
        choice["text"] = ""
    choice["logprobs"] = None
    choice["finish_reason"] = "content_filter"
