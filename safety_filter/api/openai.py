"""The OpenAI / Azure OpenAI wire formats: texts out of requests and responses, verdicts back in.

Everything here is pure (dicts in, dicts out) so the middleware, the proxy and the tests share it.
Verdicts are written the way Azure OpenAI writes its content-filter results, so existing clients
read them unchanged.

Texts are found by one rule, not by a list of known fields: **every string a model could read, or
a client could show, is text**, except the values of a short list of control keys (`role`,
`model`, ids, media payloads). A field added to the API tomorrow is therefore inspected, not
passed. Fields the filter cannot read as text (a request-supplied `chat_template`) are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from safety_filter.errors import ShapeError
from safety_filter.findings import CATEGORIES, Verdict

Kind = Literal["chat", "completion"]

# Values of these keys are identifiers, enumerations or media payloads, never text a model reads
# as language or a client shows as the model's words.
CONTROL_KEYS = frozenset(
    {
        "role", "type", "id", "model", "object", "index", "tool_call_id", "call_id", "finish_reason",
        "stop_reason", "image_url", "input_audio", "file_id", "file_data", "detail", "format", "voice",
        "encoding_format", "service_tier", "reasoning_effort", "modalities", "logit_bias", "tool_choice",
        "system_fingerprint", "created", "expires_at", "prompt_cache_key", "safety_identifier", "user",
        "parallel_tool_calls", "signature", "logprobs", "top_logprobs", "usage", "metadata", "store",
        "stream", "stream_options",
    }
)
# Request fields that are model input the filter cannot read as text: refused unless the policy
# lists them in `passthrough_fields`.
UNREADABLE_FIELDS = ("chat_template", "chat_template_kwargs", "prompt_token_ids", "prompt_embeds", "grammar")

# Media payloads (images, audio) are not text: long base64 runs with a digit in them are skipped.
_BASE64 = re.compile(r"(?:data:[\w/+.-]+;base64,)?(?=[^0-9]*[0-9])[A-Za-z0-9+/]{512,}={0,2}")
# Subtrees that carry no text of their own: media, token statistics, filter results.
SKIPPED_SUBTREES = frozenset(
    {"image_url", "input_audio", "logprobs", "usage", "content_filter_results", "prompt_filter_results"}
)

_ROUTES: tuple[tuple[re.Pattern[str], Kind], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (r"^(?:/v1)?/chat/completions/?$", "chat"),
        (r"^(?:/v1)?/completions/?$", "completion"),
        (r"^/openai/deployments/[^/]+/(?:extensions/)?chat/completions/?$", "chat"),
        (r"^/openai/deployments/[^/]+/completions/?$", "completion"),
        (r"^/openai(?:/v1)?/chat/completions/?$", "chat"),
        (r"^/openai(?:/v1)?/completions/?$", "completion"),
        (r"^(?:/v1)?/engines/[^/]+/completions/?$", "completion"),
    )
)

# APIs that carry prompts and completions but have no adapter yet: refused, never passed unread.
UNSUPPORTED_ROUTES = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"^(?:/openai)?(?:/v1)?/responses(?:/.*)?$",
        r"^/openai/deployments/[^/]+/responses(?:/.*)?$",
        r"^(?:/v1)?/messages(?:/.*)?$",
        r"^/api/(?:chat|generate)/?$",
        r"^/(?:completion|infill)/?$",
        r"^(?:/v1)?/(?:threads|assistants|realtime|batches|fine_tuning)(?:/.*)?$",
    )
)


def route_kind(path: str, extra_routes: Iterable[str] = ()) -> Kind | None:
    """Which API a POST to `path` speaks, or None when the route is not an inspected one."""
    for pattern, kind in _ROUTES:
        if pattern.match(path):
            return kind
    for extra in extra_routes:
        if re.fullmatch(extra, path, re.IGNORECASE):
            return "completion" if path.rstrip("/").lower().endswith("/completions") and "chat" not in path.lower() else "chat"
    return None


def unsupported_route(path: str) -> bool:
    """A route of an LLM API this version cannot inspect (refused rather than passed)."""
    return any(pattern.match(path) for pattern in UNSUPPORTED_ROUTES)


# -- the one rule for finding text ---------------------------------------------------------


def strings(value: Any, *, keys: bool = False) -> Iterator[str]:
    """Every string under `value` that is text, depth first, in document order.

    Values of `CONTROL_KEYS` are skipped, and so are long base64 payloads (images, audio): those
    are not text and cannot be read as such. With `keys`, object keys count too (JSON-schema
    property names are rendered into the prompt).
    """
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if item and not _BASE64.fullmatch(item):
                yield item
        elif isinstance(item, dict):
            pending = []
            for key, inner in item.items():
                if key in CONTROL_KEYS and not isinstance(inner, dict | list):
                    continue
                if key in SKIPPED_SUBTREES:
                    continue
                if keys:
                    pending.append(key)
                pending.append(inner)
            stack.extend(reversed(pending))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def joined(value: Any, *, keys: bool = False) -> str:
    return "\n".join(strings(value, keys=keys))


def check_strings(value: Any, where: str = "body") -> None:
    """Refuse lone surrogates: they cannot be encoded, so no detector could read the text."""
    for text in strings(value, keys=True):
        if any("\ud800" <= ch <= "\udfff" for ch in text):
            raise ShapeError(f"{where} holds a lone UTF-16 surrogate (\\ud800-\\udfff): send valid Unicode")


# -- requests ------------------------------------------------------------------------------


def prompt_texts(body: Any, kind: Kind, passthrough_fields: Iterable[str] = ()) -> list[str]:
    """Every text in a request that a model would read, one text per message field.

    History (earlier user and assistant turns), system and tool messages are all inspected: an
    attacker controls every one of them. Each message's content parts are joined as the upstream
    joins them (one text), and so are runs of consecutive messages, so a sentence split across
    parts or messages is read whole. Everything outside `messages`/`prompt` (tool
    definitions, schemas, documents, `suffix`...) is read as one text per field.
    """
    if not isinstance(body, dict):
        raise ShapeError("the request body must be a JSON object")
    allowed = set(passthrough_fields)
    for name in UNREADABLE_FIELDS:
        if body.get(name) not in (None, "", [], {}) and name not in allowed:
            raise ShapeError(f"'{name}' is model input that cannot be inspected as text; it is refused by policy")
    check_strings(body)
    texts: list[str] = []
    if kind == "completion" or "prompt" in body:
        texts.extend(_prompt_field(body.get("prompt"), required=kind == "completion"))
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise ShapeError("'messages' must be a list of message objects")
        contents = []
        for position, message in enumerate(messages):
            if not isinstance(message, dict):
                raise ShapeError(f"messages[{position}] must be an object")
            message_texts = _message_texts(message, f"messages[{position}]")
            texts.extend(message_texts)
            contents.append("\n".join(message_texts))
        texts.extend(_consecutive(contents))
    for key, value in body.items():
        if key in ("messages", "prompt") or key in CONTROL_KEYS:
            continue
        texts.append(joined(value, keys=isinstance(value, dict | list)))
    return [t for t in texts if t]


def _consecutive(contents: list[str], widths: tuple[int, ...] = (2, 3)) -> list[str]:
    """Runs of consecutive messages joined, so a sentence split across messages is read whole.

    Runs (not the whole history) keep the cost per turn flat: only runs that end at a new
    message are new, the rest come from the findings cache.
    """
    present = [c for c in contents if c]
    return ["\n".join(present[i : i + width]) for width in widths for i in range(len(present) - width + 1)]


def _prompt_field(prompt: Any, *, required: bool) -> list[str]:
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return list(prompt)
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) or isinstance(p, list) for p in prompt):
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
            if isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text") and not isinstance(part.get("text"), str):
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


# -- responses -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChoiceText:
    """The text of one choice. `position` is its place in the `choices` list (unique even when
    an upstream repeats an `index`); `index` is what the choice calls itself."""

    position: int
    index: int
    text: str


def choice_texts(body: Any) -> list[ChoiceText]:
    """Everything a client could show of each choice of a (non-streamed) response.

    Content, refusal, reasoning (`reasoning_content`, `reasoning`), audio transcripts, tool-call
    names and arguments: every string of the choice outside control keys.
    """
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise ShapeError("the response has no 'choices' list")
    out = []
    for position, choice in enumerate(body["choices"]):
        if not isinstance(choice, dict):
            raise ShapeError(f"choices[{position}] must be an object")
        index = choice.get("index", position)
        out.append(ChoiceText(position, index if isinstance(index, int) else position, joined(choice)))
    return out


# A stream channel: one choice, one field of it. Text of different channels is never concatenated
# (parallel tool calls interleave their argument deltas; reasoning and content are separate).
Channel = tuple[int, str]


def delta_texts(chunk: Any) -> list[tuple[Channel, str]]:
    """The text each channel adds in one streamed chunk (chat `delta`, completion `text`)."""
    if not isinstance(chunk, dict):
        raise ShapeError("a stream event must carry a JSON object")
    choices = chunk.get("choices") or []
    if not isinstance(choices, list):
        raise ShapeError("'choices' must be a list")
    out: list[tuple[Channel, str]] = []
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise ShapeError(f"choices[{position}] must be an object")
        index = choice.get("index", position)
        index = index if isinstance(index, int) else position
        for path, text in _leaves(choice, ""):
            out.append(((index, path), text))
    rest = {k: v for k, v in chunk.items() if k != "choices"}
    for path, text in _leaves(rest, "chunk"):
        out.append(((0, path), text))
    return out


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, string) for every text string; list items are keyed by their own `index`."""
    if isinstance(value, str):
        if value and not _BASE64.fullmatch(value):
            yield path, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key in SKIPPED_SUBTREES or (key in CONTROL_KEYS and not isinstance(inner, dict | list)):
                continue
            yield from _leaves(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for position, inner in enumerate(value):
            own = inner.get("index") if isinstance(inner, dict) else None
            yield from _leaves(inner, f"{path}[{own if isinstance(own, int) else position}]")


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
    """Write verdicts (keyed by position in `choices`) into a response: blocked choices are
    withheld, others optionally annotated."""
    for position, choice in enumerate(body.get("choices", [])):
        verdict = choices.get(position)
        if verdict is None or not isinstance(choice, dict):
            continue
        if verdict.blocked:
            withhold(choice)
        if verdict.blocked or annotate:
            choice["content_filter_results"] = content_filter_results(verdict)
    if prompt is not None and annotate:
        body["prompt_filter_results"] = prompt_filter_results(prompt)
    return body


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
