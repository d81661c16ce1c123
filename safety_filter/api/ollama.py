"""Ollama's native API (`POST /api/chat`, `/api/generate`): NDJSON streams, on by default.

A block is answered as Ollama answers errors (`{"error": ...}`, so the `ollama` client raises
`ResponseError`); a blocked stream ends with a final `done: true` line whose `done_reason` is
`content_filter`, and a blocked JSON answer loses its text the same way.
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

# Model input the filter cannot read: a request-supplied prompt template, and `context` (token
# ids of an earlier exchange). Refused unless the policy's `passthrough_fields` names them.
UNREADABLE = ("template", "context")
_SKIPPED = frozenset({"images"})  # media, not text


def _without_media(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_media(inner) for key, inner in value.items() if key not in _SKIPPED}
    if isinstance(value, list):
        return [_without_media(inner) for inner in value]
    return value


def _text(value: Any) -> str:
    """Joined text; object values (tool-call arguments, schemas) with their keys."""
    return joined(value, keys=isinstance(value, dict | list))


class _Ollama(Adapter):
    stream_format = "ndjson"
    output_key = ""  # "message" (chat) or "response" (generate)

    def wants_stream(self, body: Mapping[str, Any]) -> bool:
        """Ollama streams unless the request says `"stream": false`."""
        return body.get("stream") is not False

    def _request(self, body: Any, passthrough_fields: Iterable[str]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ShapeError("the request body must be a JSON object")
        passed = tuple(passthrough_fields)
        refuse_unreadable(body, passed)
        for name in UNREADABLE:
            if body.get(name) not in (None, "", [], {}) and name not in passed:
                raise ShapeError(f"'{name}' is model input that cannot be inspected as text; it is refused by policy")
        check_strings(body)
        return body

    def _other(self, body: dict[str, Any], done: tuple[str, ...]) -> list[str]:
        """Every other field, one text each; a control key's object (a `format` schema) too."""
        skipped = (*done, *UNREADABLE, *_SKIPPED)
        items = [
            (k, v)
            for k, v in body.items()
            if k not in skipped and not (k in CONTROL_KEYS and not isinstance(v, dict | list))
        ]
        return [_text(_without_media(v)) for _, v in items]

    def response_texts(self, body: Any) -> tuple[list[OutputText], str]:
        if not isinstance(body, dict) or self.output_key not in body:
            raise ShapeError(f"the response has no '{self.output_key}'")
        output = {key: body[key] for key in (self.output_key, "thinking", "logprobs") if key in body}
        rest = {key: value for key, value in body.items() if key not in output}
        return [OutputText(0, 0, _text(_without_media(output)))], joined(rest)

    def withhold(
        self, body: dict[str, Any], verdicts: Mapping[int, Verdict], prompt: Verdict | None, *, annotate: bool
    ) -> dict[str, Any]:
        verdict = verdicts.get(0)
        if verdict is not None and verdict.blocked:
            for key in ("thinking", "logprobs", "context"):  # `context` holds the output's tokens
                body.pop(key, None)
            body.update(self._empty())
            body["done"], body["done_reason"] = True, "content_filter"
        if verdict is not None and (verdict.blocked or annotate):
            body["content_filter_results"] = content_filter_results(verdict)
        if prompt is not None and annotate:
            body["prompt_filter_results"] = prompt_filter_results(prompt)
        return body

    def event_texts(self, event: Any) -> list[tuple[Channel, str]]:
        if not isinstance(event, dict):
            raise ShapeError("an Ollama stream line must be a JSON object")
        return [((0, path), text) for path, text in leaves(_without_media(event), "")]

    def error(
        self, status: int, message: str, code: str, *, error_type: str = "invalid_request_error"
    ) -> dict[str, Any]:
        return {"error": message}

    def prompt_blocked(self, verdict: Verdict) -> tuple[int, dict[str, Any]]:
        categories = ", ".join(verdict.filtered_categories()) or "policy"
        return 400, self.error(
            400,
            f"the prompt was filtered by safety-filter's content management policy ({categories})",
            "content_filter",
        )

    def stream_blocked(self, verdict: Verdict, index: int, last_event: Mapping[str, Any]) -> bytes:
        line = {
            "model": last_event.get("model", ""),
            "created_at": last_event.get("created_at", ""),
            **self._empty(),
            "done": True,
            "done_reason": "content_filter",
        }
        return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    def _empty(self) -> dict[str, Any]:
        raise NotImplementedError


class OllamaChat(_Ollama):
    """`POST /api/chat`: messages (content, thinking, tool calls; images skipped as media)."""

    name = "ollama-chat"
    routes = (r"/api/chat/?",)
    output_key = "message"

    def request_texts(self, body: Any, passthrough_fields: Iterable[str] = ()) -> list[str]:
        body = self._request(body, passthrough_fields)
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise ShapeError("'messages' must be a list of message objects")
        contents = []
        for position, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("content", ""), str):
                raise ShapeError(f"messages[{position}] must be an object whose content is a string")
            contents.append(
                "\n".join(
                    t for t in (_text(v) for k, v in _without_media(message).items() if k not in CONTROL_KEYS) if t
                )
            )
        return [t for t in contents + consecutive(contents) + self._other(body, ("messages",)) if t]

    def _empty(self) -> dict[str, Any]:
        return {"message": {"role": "assistant", "content": ""}}


class OllamaGenerate(_Ollama):
    """`POST /api/generate`: `prompt`, `suffix`, `system` and every other field."""

    name = "ollama-generate"
    routes = (r"/api/generate/?",)
    output_key = "response"

    def request_texts(self, body: Any, passthrough_fields: Iterable[str] = ()) -> list[str]:
        body = self._request(body, passthrough_fields)
        if not isinstance(body.get("prompt", ""), str):
            raise ShapeError("'prompt' must be a string")
        return [t for t in self._other(body, ()) if t]

    def _empty(self) -> dict[str, Any]:
        return {"response": ""}
