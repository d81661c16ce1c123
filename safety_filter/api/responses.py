"""The OpenAI Responses API (`client.responses.create`, `POST /v1/responses`), also as Azure
OpenAI serves it (`/openai/v1/responses`, `/openai/responses`).

Requests: every text a model reads (`input` as a string or as items: messages, function calls and
their outputs, reasoning, custom tool calls; `instructions`, tool definitions with their schemas,
`text.format`), with runs of consecutive input items joined. Responses: each `output` item, and
`output_text` when an upstream adds it. Streams: one channel per output item and content part
(or summary part) and event kind, so deltas of different items are never joined; the `.done`,
`output_item.done` and `response.completed` events repeat the full text and are inspected (and
held) like the deltas.

**Stored history is refused by policy.** `previous_response_id`, `conversation`, `item_reference`
input items and `background` make the model read text the filter never sees: history stored
upstream (it may hold turns that never passed through the filter, or outputs the filter blocked
but the upstream kept, and a phrase split across turns cannot be joined), or an output fetched
later from a route the filter does not inspect. They are refused with a 400, as any model input
the filter cannot read is, unless the policy names them in `passthrough_fields`; then only the
new input is inspected (every output still is). A stored prompt template (`prompt.id`) is the
developer's own text and passes; its `variables` are inspected.

Blocks are answered as the API ends a filtered response: a prompt gets Azure's 400
`content_filter` error (the client raises `BadRequestError`); an output makes the response
`status: "incomplete"` with `incomplete_details.reason: "content_filter"` and no output items,
and a stream ends with a `response.incomplete` event saying the same. Annotations are Azure's
`content_filter_results` on each output item and `prompt_filter_results` on the response (JSON
only: a stream has no event for them, its `x-safety-filter-action` header says `annotate`).
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
from safety_filter.api.openai import error_body
from safety_filter.errors import ShapeError
from safety_filter.findings import Verdict

# Request fields that let text pass unseen (see the module docstring), and why.
UNSEEN_INPUT = {
    "previous_response_id": "makes the model read a stored history safety-filter cannot inspect",
    "conversation": "makes the model read a stored conversation safety-filter cannot inspect",
    "background": "makes the output be fetched later, from a route safety-filter does not inspect",
}
# Identifiers and enumerations of this API that the generic rule would read as text.
_NOT_TEXT = frozenset({"item_id", "obfuscation", "status", "sequence_number"})
# Fields of a response object that repeat the request (inspected as the prompt). Skipping them
# also keeps `response.created` from holding the whole stream: a short text is only checked
# once more text arrives in its channel, or at the end.
REQUEST_ECHO = frozenset(
    {
        "instructions",
        "tools",
        "text",
        "prompt",
        "reasoning",
        "truncation",
        "include",
        "tool_choice",
        "temperature",
        "top_p",
        "max_output_tokens",
        "max_tool_calls",
        "conversation",
        "previous_response_id",
        "background",
        "prompt_cache_retention",
        "store",
        "user",
        "metadata",
        "parallel_tool_calls",
    }
)


class OpenAIResponses(Adapter):
    """`POST /v1/responses` and its Azure spellings."""

    name = "openai-responses"
    routes = (
        r"(?:/v1)?/responses/?",
        r"/openai(?:/v1)?/responses/?",
        r"/openai/deployments/[^/]+/responses/?",
    )

    # -- requests --------------------------------------------------------------------------

    def request_texts(self, body: Any, passthrough_fields: Iterable[str] = ()) -> list[str]:
        """Each input item's text, runs of consecutive items joined, and one text per other field
        (`instructions`, `tools` and `text` with their schemas' property names)."""
        if not isinstance(body, dict):
            raise ShapeError("the request body must be a JSON object")
        passed = tuple(passthrough_fields)
        refuse_unreadable(body, passed)
        check_strings(body)
        for name, why in UNSEEN_INPUT.items():
            if body.get(name) not in (None, False, "", {}) and name not in passed:
                raise ShapeError(
                    f"'{name}' {why}; it is refused by policy (send the whole conversation as 'input' "
                    f"without it, or list '{name}' in the policy's passthrough_fields)"
                )
        texts: list[str] = []
        items = body.get("input")
        if isinstance(items, str):
            texts.append(items)
        elif isinstance(items, list):
            contents = []
            for position, item in enumerate(items):
                item_texts = _item_texts(item, f"input[{position}]", passed)
                texts.extend(item_texts)
                contents.append("\n".join(item_texts))
            texts.extend(consecutive(contents))
        elif items is not None:
            raise ShapeError("'input' must be a string or a list of items")
        for key, value in body.items():
            if key == "input" or key in UNSEEN_INPUT or key in CONTROL_KEYS or key in _NOT_TEXT:
                continue
            texts.append(joined(value, keys=isinstance(value, dict | list)))
        return [t for t in texts if t]

    # -- responses -------------------------------------------------------------------------

    def response_texts(self, body: Any) -> tuple[list[OutputText], str]:
        """One text per output item, `output_text` as one more, and every other field."""
        if not isinstance(body, dict) or not isinstance(body.get("output"), list):
            raise ShapeError("the response has no 'output' list")
        outputs = [OutputText(position, position, joined(_strip(item))) for position, item in enumerate(body["output"])]
        if isinstance(body.get("output_text"), str):
            outputs.append(OutputText(len(outputs), len(outputs), body["output_text"]))
        rest = {
            key: value
            for key, value in body.items()
            if key not in ("output", "output_text") and key not in REQUEST_ECHO
        }
        return outputs, joined(_strip(rest))

    def withhold(
        self, body: dict[str, Any], verdicts: Mapping[int, Verdict], prompt: Verdict | None, *, annotate: bool
    ) -> dict[str, Any]:
        """A block empties the whole output (the items of one answer are read together, so none
        is kept) and marks the response incomplete for `content_filter`, as the API does."""
        blocking = [verdict for verdict in verdicts.values() if verdict.blocked]
        if blocking:
            body["output"] = []
            body.pop("output_text", None)
            body["status"] = "incomplete"
            body["incomplete_details"] = {"reason": "content_filter"}
            body["content_filter_results"] = content_filter_results(blocking[0])
        elif annotate:
            for position, item in enumerate(body.get("output", [])):
                if isinstance(item, dict) and position in verdicts:
                    item["content_filter_results"] = content_filter_results(verdicts[position])
        if prompt is not None and annotate:
            body["prompt_filter_results"] = prompt_filter_results(prompt)
        return body

    def event_texts(self, event: Any) -> list[tuple[Channel, str]]:
        """The text of one stream event, by channel: (output index, event kind and part).

        A delta event's `delta` extends its part's channel; every other text (the full texts
        of `.done` events, items, whole responses) gets a channel of its own event kind, so a
        repeat is read whole and never joined to the deltas.
        """
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ShapeError("a Responses stream event must be a JSON object with a 'type'")
        kind = event["type"]
        output = event.get("output_index")
        output = output if isinstance(output, int) else 0
        part = "".join(
            f"[{event[key]}]" for key in ("content_index", "summary_index") if isinstance(event.get(key), int)
        )
        out: list[tuple[Channel, str]] = []
        rest = _strip(event)
        if kind.endswith(".delta") and isinstance(rest.get("delta"), str):
            out.append(((output, f"{kind}{part}"), rest.pop("delta")))
        response = rest.get("response")
        if isinstance(response, dict):
            rest["response"] = {
                key: value for key, value in response.items() if key != "output" and key not in REQUEST_ECHO
            }
            items = response.get("output")
            for position, item in enumerate(items if isinstance(items, list) else [items]):
                out.extend(((position, path), text) for path, text in leaves(item, f"{kind}.output"))
        out.extend(((output, path), text) for path, text in leaves(rest, f"{kind}{part}"))
        return out

    def complete_channels(self, event: Any) -> list[Channel]:
        """Every channel but the deltas' is whole in its one event, and a `.done` event ends its
        part's deltas: none needs holding back once checked."""
        try:
            keys = [key for key, _ in self.event_texts(event)]
        except ShapeError:
            return []
        kind = event["type"]
        if kind.endswith(".delta"):
            keys = [key for key in keys if key != _delta_channel(event, kind)]
        elif kind.endswith(".done"):
            keys.append(_delta_channel(event, kind.removesuffix(".done") + ".delta"))
        return keys

    # -- answers ---------------------------------------------------------------------------

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
        body["error"]["param"] = "output"
        body["error"]["message"] = "The response was filtered by safety-filter's content management policy."
        return (502 if verdict.error else 400), body

    def stream_blocked(self, verdict: Verdict, index: int, last_event: Mapping[str, Any]) -> bytes:
        """A `response.incomplete` event with reason `content_filter` and no output: what the API
        sends when it stops a response early. Its id and model come from the last lifecycle event
        seen, when the stream guard passes one."""
        response_event = last_event.get("response")
        seen: Mapping[str, Any] = response_event if isinstance(response_event, dict) else {}
        response = {
            "id": seen.get("id", ""),
            "object": "response",
            "created_at": seen.get("created_at", 0),
            "model": seen.get("model", ""),
            "status": "incomplete",
            "incomplete_details": {"reason": "content_filter"},
            "error": None,
            "output": [],
            "parallel_tool_calls": seen.get("parallel_tool_calls", True),
            "tool_choice": seen.get("tool_choice", "auto"),
            "tools": [],
            "content_filter_results": content_filter_results(verdict),
        }
        sequence = last_event.get("sequence_number")
        event = {
            "type": "response.incomplete",
            "sequence_number": sequence + 1 if isinstance(sequence, int) else 0,
            "response": response,
        }
        data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        return f"event: response.incomplete\ndata: {data}\n\n".encode()

    def is_end_event(self, data: str) -> bool:
        return data.strip() == "[DONE]"  # not sent by OpenAI, but by some compatible servers


def _delta_channel(event: Mapping[str, Any], kind: str) -> Channel:
    """The channel of one part's deltas: its output item, event kind and content/summary part."""
    output = event.get("output_index")
    indexes = (event.get(key) for key in ("content_index", "summary_index"))
    return output if isinstance(output, int) else 0, kind + "".join(f"[{i}]" for i in indexes if isinstance(i, int))


def _strip(value: Any) -> Any:
    """`value` without the identifiers and enumerations of `_NOT_TEXT`, at any depth."""
    if isinstance(value, dict):
        return {key: _strip(inner) for key, inner in value.items() if key not in _NOT_TEXT}
    if isinstance(value, list):
        return [_strip(inner) for inner in value]
    return value


def _item_texts(item: Any, where: str, passed: tuple[str, ...]) -> list[str]:
    """An input item's content (its parts joined, as the model reads them) and each other field:
    function-call arguments and outputs, reasoning summaries, custom tool input."""
    if isinstance(item, str):
        return [item]
    if not isinstance(item, dict):
        raise ShapeError(f"{where} must be an object")
    if item.get("type") == "item_reference" and "item_reference" not in passed:
        raise ShapeError(
            f"{where} is an item_reference: the model would read a stored item safety-filter cannot inspect; "
            "it is refused by policy (send the item itself, or list 'item_reference' in passthrough_fields)"
        )
    content = item.get("content")
    if isinstance(content, list):
        for position, part in enumerate(content):
            if (
                isinstance(part, dict)
                and part.get("type") in ("input_text", "output_text", "text")
                and not isinstance(part.get("text"), str)
            ):
                raise ShapeError(f"{where}.content[{position}].text must be a string")
    elif content is not None and not isinstance(content, str):
        raise ShapeError(f"{where}.content must be a string or a list of content parts")
    texts = [joined(_strip(content))]
    for key, value in item.items():
        if key == "content" or key in CONTROL_KEYS or key in _NOT_TEXT:
            continue
        texts.append(joined(_strip(value)))
    return [t for t in texts if t]
