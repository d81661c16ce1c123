"""The one rule for finding text in a JSON body, shared by every API adapter.

**Every string a model could read, or a client could show, is text**, except the values of a
short list of control keys (`role`, `model`, ids, media payloads). A field added to an API
tomorrow is therefore inspected, not passed. Fields the filter cannot read as text (a
request-supplied `chat_template`) are refused by the adapters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from safety_filter.errors import ShapeError

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



def leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, string) for every text string; list items are keyed by their own `index`
    (so a stream's interleaved tool-call deltas land in one channel per call)."""
    if isinstance(value, str):
        if value and not _BASE64.fullmatch(value):
            yield path, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key in SKIPPED_SUBTREES or (key in CONTROL_KEYS and not isinstance(inner, dict | list)):
                continue
            yield from leaves(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for position, inner in enumerate(value):
            own = inner.get("index") if isinstance(inner, dict) else None
            yield from leaves(inner, f"{path}[{own if isinstance(own, int) else position}]")


def refuse_unreadable(body: dict[str, Any], allowed: Iterator[str] | tuple[str, ...] = ()) -> None:
    """Model input that cannot be read as text is refused unless the policy passes it."""
    passed = set(allowed)
    for name in UNREADABLE_FIELDS:
        if body.get(name) not in (None, "", [], {}) and name not in passed:
            raise ShapeError(f"'{name}' is model input that cannot be inspected as text; it is refused by policy")


def consecutive(contents: list[str], widths: tuple[int, ...] = (2, 3)) -> list[str]:
    """Runs of consecutive messages joined, so a sentence split across messages is read whole.

    Runs (not the whole history) keep the cost per turn flat: only runs that end at a new
    message are new, the rest come from the findings cache.
    """
    present = [c for c in contents if c]
    return ["\n".join(present[i : i + width]) for width in widths for i in range(len(present) - width + 1)]
