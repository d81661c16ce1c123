"""The OpenAI / Azure OpenAI wire formats: texts out of requests and responses, verdicts back in.

Everything here is pure (dicts in, dicts out) so the middleware, the proxy and the tests share it.
Verdicts are written the way Azure OpenAI writes its content-filter results, so existing clients
read them unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from safety_filter.errors import ShapeError
from safety_filter.findings import CATEGORIES, Verdict

Kind = Literal["chat", "completion"]

_ROUTES: tuple[tuple[re.Pattern[str], Kind], ...] = (
    (re.compile(r"^(?:/v1)?/chat/completions/?$"), "chat"),
    (re.compile(r"^(?:/v1)?/completions/?$"), "completion"),
    (re.compile(r"^/openai/deployments/[^/]+/chat/completions/?$"), "chat"),
    (re.compile(r"^/openai/deployments/[^/]+/completions/?$"), "completion"),
)


def route_kind(path: str, extra_routes: Iterable[str] = ()) -> Kind | None:
    """Which API a POST to `path` speaks, or None when the route is not inspected."""
    for pattern, kind in _ROUTES:
        if pattern.match(path):
            return kind
    for pattern in extra_routes:
        if re.fullmatch(pattern, path):
            return "completion" if path.rstrip("/").endswith("/completions") and "chat" not in path else "chat"
    return None


# -- requests ------------------------------------------------------------------------------


def prompt_texts(body: Any, kind: Kind) -> list[str]:
    """Every text in a request that a model would read: all messages, all text parts.

    History (earlier user and assistant turns), system and tool messages are all inspected:
    an attacker controls every one of them. Tool-call arguments and function outputs count too.
    """
    if not isinstance(body, dict):
        raise ShapeError("the request body must be a JSON object")
    texts: list[str] = []
    if kind == "completion" or "prompt" in body:
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            texts.append(prompt)
        elif isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
            texts.extend(prompt)
        elif isinstance(prompt, list) and all(isinstance(p, int) for p in prompt):
            raise ShapeError("'prompt' as token ids cannot be inspected; send text")
        elif kind == "completion":
            raise ShapeError("'prompt' must be a string or a list of strings")
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise ShapeError("'messages' must be a list of message objects")
        for position, message in enumerate(messages):
            if not isinstance(message, dict):
                raise ShapeError(f"messages[{position}] must be an object")
            texts.extend(_message_texts(message, f"messages[{position}]"))
    return [t for t in texts if t]


def _message_texts(message: Mapping[str, Any], where: str) -> list[str]:
    texts = _content_texts(message.get("content"), f"{where}.content")
    if isinstance(message.get("refusal"), str):
        texts.append(message["refusal"])
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(arguments, str):
            texts.append(arguments)
    function_call = message.get("function_call")
    if isinstance(function_call, dict) and isinstance(function_call.get("arguments"), str):
        texts.append(function_call["arguments"])
    return texts


def _content_texts(content: Any, where: str) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        texts = []
        for position, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type") in ("text", "input_text", "output_text"):
                    raise ShapeError(f"{where}[{position}].text must be a string")
            else:
                raise ShapeError(f"{where}[{position}] must be an object or a string")
        return texts
    raise ShapeError(f"{where} must be a string, a list of content parts or null")


# -- responses -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChoiceText:
    index: int
    text: str


def choice_texts(body: Any) -> list[ChoiceText]:
    """The generated text of each choice of a (non-streamed) chat or completion response."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise ShapeError("the response has no 'choices' list")
    return _choice_texts(body["choices"], "message", separator="\n", keep_empty=True)


def delta_texts(chunk: Any) -> list[ChoiceText]:
    """The text each choice adds in one streamed chunk (chat `delta` or completion `text`)."""
    if not isinstance(chunk, dict):
        raise ShapeError("a stream event must carry a JSON object")
    choices = chunk.get("choices") or []
    if not isinstance(choices, list):
        raise ShapeError("'choices' must be a list")
    return _choice_texts(choices, "delta", separator="", keep_empty=False)


def _choice_texts(choices: list[Any], field: str, *, separator: str, keep_empty: bool) -> list[ChoiceText]:
    """Each choice's `text` plus the texts of its `message` or `delta` object."""
    out = []
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise ShapeError(f"choices[{position}] must be an object")
        index = choice.get("index", position)
        parts: list[str] = []
        if isinstance(choice.get("text"), str):
            parts.append(choice["text"])
        inner = choice.get(field)
        if isinstance(inner, dict):
            parts.extend(_message_texts(inner, f"choices[{position}].{field}"))
        if parts or keep_empty:
            out.append(ChoiceText(index=index if isinstance(index, int) else position, text=separator.join(parts)))
    return out


# -- Azure content-filter annotations ------------------------------------------------------


def content_filter_results(verdict: Verdict) -> dict[str, Any]:
    """Azure's `content_filter_results` object for one verdict (all categories present)."""
    results: dict[str, Any] = {}
    for name in (*CATEGORIES, *(c for c in verdict.categories if c not in CATEGORIES)):
        result = verdict.categories.get(name)
        if result is not None:
            results[name] = {"filtered": result.filtered, "severity": result.severity.value}
    if verdict.error is not None:
        results["error"] = {"code": "content_filter_error", "message": verdict.error}
    return results


def prompt_filter_results(verdict: Verdict) -> list[dict[str, Any]]:
    return [{"prompt_index": 0, "content_filter_results": content_filter_results(verdict)}]


def prompt_blocked_body(verdict: Verdict) -> dict[str, Any]:
    """The HTTP 400 body Azure OpenAI sends when a prompt is filtered."""
    return {
        "error": {
            "message": (
                "The response was filtered due to the prompt triggering safety-filter's content "
                f"management policy ({', '.join(verdict.filtered_categories()) or 'policy'}). "
                "Please modify your prompt and retry."
            ),
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": content_filter_results(verdict),
            },
        }
    }


def filter_error_body(verdict: Verdict) -> dict[str, Any]:
    """HTTP 503 body for a prompt that could not be inspected under the `closed` fail mode."""
    return {
        "error": {
            "message": f"The request was refused because it could not be inspected: {verdict.error}",
            "type": None,
            "param": "prompt",
            "code": "content_filter_error",
            "status": 503,
            "innererror": {"code": "ContentFilterError", "content_filter_result": content_filter_results(verdict)},
        }
    }


def error_body(status: int, message: str, code: str, *, error_type: str = "invalid_request_error") -> dict[str, Any]:
    """An OpenAI-style error body for malformed input and upstream failures."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code, "status": status}}


def apply_verdicts(
    body: dict[str, Any],
    choices: Mapping[int, Verdict],
    prompt: Verdict | None,
    *,
    annotate: bool,
) -> dict[str, Any]:
    """Write verdicts into a response: blocked choices are withheld, others optionally annotated."""
    for position, choice in enumerate(body.get("choices", [])):
        index = choice.get("index", position)
        verdict = choices.get(index if isinstance(index, int) else position)
        if verdict is None:
            continue
        if verdict.blocked:
            withhold(choice)
        if verdict.blocked or annotate:
            choice["content_filter_results"] = content_filter_results(verdict)
    if prompt is not None and annotate:
        body["prompt_filter_results"] = prompt_filter_results(prompt)
    return body


def withhold(choice: dict[str, Any]) -> None:
    """Remove a choice's generated content and mark it filtered, as Azure does."""
    choice["finish_reason"] = "content_filter"
    if "text" in choice:
        choice["text"] = ""
    message = choice.get("message")
    if isinstance(message, dict):
        message["content"] = None
        for key in ("tool_calls", "function_call", "refusal", "audio"):
            message.pop(key, None)
