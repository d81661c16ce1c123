"""The Anthropic Messages API (`POST /v1/messages`, which vLLM and llama.cpp serve too).

A blocked prompt is answered in Anthropic's error shape with a 400, so the `anthropic` client
raises `BadRequestError`. A blocked output ends as Anthropic ends a refused one: content
withheld and `stop_reason: "refusal"` (JSON), or a `message_delta` with that stop reason and
then `message_stop` (stream).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from safety_filter.api.azure import content_filter_results, prompt_filter_results
from safety_filter.api.base import Adapter, Channel, OutputText
from safety_filter.api.fields import CONTROL_KEYS, check_strings, consecutive, joined, leaves, refuse_unreadable
from safety_filter.errors import ShapeError
from safety_filter.findings import Verdict

# Anthropic's error types for the statuses the filter answers with.
_ERROR_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    413: "request_too_large",
    499: "invalid_request_error",
    503: "overloaded_error",
}
# Blocks whose `input` is a JSON object the model wrote or reads: its property names count too.
_TOOL_INPUT = "input"


def _sse(event: str, payload: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def _refusal_details(verdict: Verdict) -> dict[str, Any]:
    categories = ", ".join(verdict.filtered_categories()) or "policy"
    return {
        "type": "refusal",
        "category": None,
        "explanation": f"The output was filtered by safety-filter's content management policy ({categories}).",
    }


def _blocks_text(blocks: Any) -> str:
    """The text of content blocks, as the upstream renders them: tool inputs with their keys."""
    if not isinstance(blocks, list):
        return joined(blocks)
    parts = []
    for block in blocks:
        if isinstance(block, dict) and isinstance(block.get(_TOOL_INPUT), dict | list):
            rest = {key: value for key, value in block.items() if key != _TOOL_INPUT}
            parts += [joined(rest), joined(block[_TOOL_INPUT], keys=True)]
        else:
            parts.append(joined(block))
    return "\n".join(p for p in parts if p)


class AnthropicMessages(Adapter):
    """`POST /v1/messages` (and `/v1/messages/count_tokens`, which carries a prompt too)."""

    name = "anthropic-messages"
    routes = (r"(?:/v1)?/messages(?:/count_tokens)?/?",)

    def request_texts(self, body: Any, passthrough_fields: Iterable[str] = ()) -> list[str]:
        """`system`, each message's content blocks (text, tool_use input, tool_result, thinking,
        documents) joined as one text per message, runs of consecutive messages, and every other
        field (tool definitions with their schemas' property names) one text each."""
        if not isinstance(body, dict):
            raise ShapeError("the request body must be a JSON object")
        refuse_unreadable(body, tuple(passthrough_fields))
        check_strings(body)
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise ShapeError("'messages' must be a list of message objects")
        texts: list[str] = []
        contents = []
        for position, message in enumerate(messages):
            if not isinstance(message, dict):
                raise ShapeError(f"messages[{position}] must be an object")
            content = message.get("content")
            if not isinstance(content, str | list) or (
                isinstance(content, list) and not all(isinstance(b, dict) for b in content)
            ):
                raise ShapeError(f"messages[{position}].content must be a string or a list of content blocks")
            text = "\n".join(
                t
                for t in [
                    _blocks_text(content),
                    *(joined(v) for k, v in message.items() if k != "content" and k not in CONTROL_KEYS),
                ]
                if t
            )
            texts.append(text)
            contents.append(text)
        texts.extend(consecutive(contents))
        system = body.get("system")
        if system is not None and not isinstance(system, str | list):
            raise ShapeError("'system' must be a string or a list of text blocks")
        texts.append(_blocks_text(system))
        for key, value in body.items():
            if key not in ("messages", "system") and key not in CONTROL_KEYS:
                texts.append(joined(value, keys=isinstance(value, dict | list)))
        return [t for t in texts if t]

    def response_texts(self, body: Any) -> tuple[list[OutputText], str]:
        """One output, the message's content blocks (text, thinking, tool_use input); plus every
        other text of the message."""
        if not isinstance(body, dict) or not isinstance(body.get("content"), list):
            raise ShapeError("the response has no 'content' list")
        rest = {key: value for key, value in body.items() if key != "content"}
        return [OutputText(0, 0, _blocks_text(body["content"]))], joined(rest)

    def withhold(
        self, body: dict[str, Any], verdicts: Mapping[int, Verdict], prompt: Verdict | None, *, annotate: bool
    ) -> dict[str, Any]:
        verdict = verdicts.get(0)
        if verdict is not None and verdict.blocked:
            body["content"] = []
            body["stop_reason"] = "refusal"
            body["stop_sequence"] = None
            body["stop_details"] = _refusal_details(verdict)
        if verdict is not None and (verdict.blocked or annotate):
            body["content_filter_results"] = content_filter_results(verdict)
        if prompt is not None and annotate:
            body["prompt_filter_results"] = prompt_filter_results(prompt)
        return body

    def event_texts(self, event: Any) -> list[tuple[Channel, str]]:
        """One channel per content block index and field: a block's start and its deltas
        (`text_delta`, `thinking_delta`, `input_json_delta`...) land in the same channel."""
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ShapeError("an Anthropic stream event is an object with a 'type'")
        index = event.get("index", 0)
        index = index if isinstance(index, int) and not isinstance(index, bool) else 0
        kind = event["type"]
        out: list[tuple[Channel, str]] = []
        if kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            block = event["content_block"]
            for key, value in block.items():
                if key == _TOOL_INPUT:
                    if text := joined(value, keys=True):
                        out.append(((index, "input"), text))
                else:
                    out.extend(((index, path), text) for path, text in leaves({key: value}, ""))
            rest = {key: value for key, value in event.items() if key != "content_block"}
        elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            for path, text in leaves(event["delta"], ""):
                out.append(((index, "input" if path == "partial_json" else path), text))
            rest = {key: value for key, value in event.items() if key != "delta"}
        else:
            rest = event
        out.extend(((index, path), text) for path, text in leaves(rest, kind))
        return out

    def error(
        self, status: int, message: str, code: str, *, error_type: str = "invalid_request_error"
    ) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def prompt_blocked(self, verdict: Verdict) -> tuple[int, dict[str, Any]]:
        categories = ", ".join(verdict.filtered_categories()) or "policy"
        message = (
            f"The prompt was filtered by safety-filter's content management policy ({categories}); modify it and retry."
        )
        return 400, self.error(400, message, "content_filter")

    def stream_blocked(self, verdict: Verdict, index: int, last_event: Mapping[str, Any]) -> bytes:
        delta = {"stop_reason": "refusal", "stop_sequence": None, "stop_details": _refusal_details(verdict)}
        return _sse("message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 0}}) + _sse(
            "message_stop", {"type": "message_stop"}
        )
