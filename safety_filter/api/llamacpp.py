"""llama.cpp's native server API (`POST /completion`, `/infill`; its `/completions` and `/v1/...`
routes are OpenAI's).

A block is answered in llama.cpp's error shape (`{"error": {"code", "message", "type"}}`); a
blocked stream ends with a final `{"content": "", "stop": true, "stop_type": "content_filter"}`
event, and a blocked JSON result loses its text the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from safety_filter.api.azure import content_filter_results, prompt_filter_results
from safety_filter.api.base import Adapter, Channel, OutputText
from safety_filter.api.fields import CONTROL_KEYS, check_strings, joined, leaves, refuse_unreadable
from safety_filter.errors import ShapeError
from safety_filter.findings import Verdict

# Fields of a result that carry the generated text (tokens repeat it as ids or strings).
_OUTPUT_FIELDS = ("content", "tokens", "completion_probabilities", "probs")
_ERROR_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    501: "not_supported_error",
    503: "unavailable_error",
}


def _prompt_texts(prompt: Any) -> list[str]:
    """A prompt as a string, a list of strings, or multimodal objects (`prompt_string`, media
    skipped); token ids cannot be read and are refused."""
    items = prompt if isinstance(prompt, list) else [prompt]
    texts = []
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            texts.append(joined({key: value for key, value in item.items() if key != "multimodal_data"}))
        elif isinstance(item, int | list) and not isinstance(item, bool):
            raise ShapeError("'prompt' as token ids cannot be inspected; send text")
        elif item is not None:
            raise ShapeError("'prompt' must be a string, a list of strings or of prompt objects")
    return texts


class LlamaCppCompletion(Adapter):
    """`POST /completion` and `/infill`: `prompt`, `input_prefix`, `input_suffix`, `input_extra`
    and every other field; results are one object, or a list of them for a list of prompts."""

    name = "llamacpp-completion"
    routes = (r"/completion/?", r"/infill/?")

    def request_texts(self, body: Any, passthrough_fields: Iterable[str] = ()) -> list[str]:
        if not isinstance(body, dict):
            raise ShapeError("the request body must be a JSON object")
        refuse_unreadable(body, tuple(passthrough_fields))
        check_strings(body)
        texts = _prompt_texts(body.get("prompt"))
        for key, value in body.items():
            if key not in ("prompt", "multimodal_data") and key not in CONTROL_KEYS:
                texts.append(joined(value, keys=isinstance(value, dict | list)))
        return [t for t in texts if t]

    def response_texts(self, body: Any) -> tuple[list[OutputText], str]:
        results = body if isinstance(body, list) else [body]
        outputs, rest = [], []
        for position, result in enumerate(results):
            if not isinstance(result, dict) or "content" not in result:
                raise ShapeError("a llama.cpp result is an object with 'content'")
            index = result.get("index", position)
            index = index if isinstance(index, int) else position
            outputs.append(OutputText(position, index, joined({k: result[k] for k in _OUTPUT_FIELDS if k in result})))
            rest.append(joined({k: v for k, v in result.items() if k not in _OUTPUT_FIELDS}))
        return outputs, "\n".join(r for r in rest if r)

    def withhold(self, body: Any, verdicts: Mapping[int, Verdict], prompt: Verdict | None, *, annotate: bool) -> Any:
        results = body if isinstance(body, list) else [body]
        for position, result in enumerate(results):
            verdict = verdicts.get(position)
            if verdict is None:
                continue
            if verdict.blocked:
                for key in _OUTPUT_FIELDS:
                    result.pop(key, None)
                result.update(content="", stop=True, stop_type="content_filter")
            if verdict.blocked or annotate:
                result["content_filter_results"] = content_filter_results(verdict)
            if prompt is not None and annotate:
                result["prompt_filter_results"] = prompt_filter_results(prompt)
        return body

    def event_texts(self, event: Any) -> list[tuple[Channel, str]]:
        if not isinstance(event, dict):
            raise ShapeError("a llama.cpp stream event must be a JSON object")
        index = event.get("index", 0)
        index = index if isinstance(index, int) and not isinstance(index, bool) else 0
        return [((index, path), text) for path, text in leaves(event, "")]

    def error(
        self, status: int, message: str, code: str, *, error_type: str = "invalid_request_error"
    ) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return {"error": {"code": status, "message": message, "type": kind}}

    def prompt_blocked(self, verdict: Verdict) -> tuple[int, dict[str, Any]]:
        categories = ", ".join(verdict.filtered_categories()) or "policy"
        return 400, self.error(
            400,
            f"The prompt was filtered by safety-filter's content management policy ({categories}).",
            "content_filter",
        )

    def stream_blocked(self, verdict: Verdict, index: int, last_event: Mapping[str, Any]) -> bytes:
        final = {
            "index": index,
            "content": "",
            "stop": True,
            "stop_type": "content_filter",
            "content_filter_results": content_filter_results(verdict),
        }
        if "id_slot" in last_event:
            final["id_slot"] = last_event["id_slot"]
        return f"data: {json.dumps(final, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()
