"""The one interface every wire format implements, so the middleware, the stream guard and the
proxy know nothing of any API's shapes.

An adapter names its routes and knows, for its API: the texts of a request; the texts of a
response and of each stream event; how to withhold a blocked output; how to answer a block in the
API's own error format (something its official client raises or reads as a filtered finish); and
how to annotate. Adding an API is one module with one `Adapter` subclass, registered in
`safety_filter/api/__init__.py`, and its tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from safety_filter.findings import Verdict

# A stream channel: one output (choice, content block...) and one field of it. Texts of
# different channels are never concatenated (parallel tool calls interleave their deltas).
Channel = tuple[int, str]


@dataclass(frozen=True, slots=True)
class OutputText:
    """The text of one output of a response (a choice, a message). `position` is its place in
    the response, unique even when an upstream repeats an `index`."""

    position: int
    index: int
    text: str


class Adapter:
    """Base of the API adapters; subclasses set `name`, `routes` and override what differs."""

    name: str = ""
    routes: tuple[str, ...] = ()  # regular expressions over the canonical path, matched case-insensitively
    stream_format: Literal["sse", "ndjson"] = "sse"

    def __init__(self) -> None:
        self._patterns = tuple(re.compile(route, re.IGNORECASE) for route in self.routes)

    def matches(self, path: str) -> bool:
        return any(pattern.fullmatch(path) for pattern in self._patterns)

    # -- requests --------------------------------------------------------------------------

    def request_texts(self, body: Any, passthrough_fields: Iterable[str] = ()) -> list[str]:
        """Every text of the request a model reads; `ShapeError` names what cannot be read."""
        raise NotImplementedError

    def wants_stream(self, body: Mapping[str, Any]) -> bool:
        return body.get("stream") not in (None, False, 0, "")

    # -- responses -------------------------------------------------------------------------

    def response_texts(self, body: Any) -> tuple[list[OutputText], str]:
        """The texts of each output, and every other text of the response (may be "").
        `ShapeError` when the body is not a response of this API: it is then read as plain text."""
        raise NotImplementedError

    def withhold(
        self, body: dict[str, Any], verdicts: Mapping[int, Verdict], prompt: Verdict | None, *, annotate: bool
    ) -> dict[str, Any]:
        """Rewrite a response: outputs whose verdict blocks lose every field carrying their text."""
        raise NotImplementedError

    def event_texts(self, event: Any) -> list[tuple[Channel, str]]:
        """The text each channel adds in one parsed stream event; `ShapeError` if not an event
        of this API (it is then read as plain text)."""
        raise NotImplementedError

    def complete_channels(self, event: Any) -> list[Channel]:
        """Channels whose text is whole once this event is read (an item's `.done`): released as
        soon as checked, with no holdback, so a finished item never holds back the next one."""
        return []

    # -- answers ---------------------------------------------------------------------------

    def error(
        self, status: int, message: str, code: str, *, error_type: str = "invalid_request_error"
    ) -> dict[str, Any]:
        raise NotImplementedError

    def prompt_blocked(self, verdict: Verdict) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def prompt_unchecked(self, verdict: Verdict) -> tuple[int, dict[str, Any]]:
        """A prompt refused because it could not be inspected (fail mode `closed`)."""
        return 503, self.error(
            503,
            f"The request was refused because it could not be inspected: {verdict.error}",
            "content_filter_error",
            error_type="server_error",
        )

    def completion_blocked(self, verdict: Verdict) -> tuple[int, dict[str, Any]]:
        """A whole response replaced (its text could not be kept apart from the rest)."""
        status = 502 if verdict.error else 400
        return status, self.error(
            status, "The response was filtered by safety-filter's content management policy.", "content_filter"
        )

    def stream_blocked(self, verdict: Verdict, index: int, last_event: Mapping[str, Any]) -> bytes:
        """The events that end a stream cut by a block, as this API ends a filtered output."""
        raise NotImplementedError

    def stream_annotation(self, index: int, verdict: Verdict, last_event: Mapping[str, Any]) -> bytes:
        """An event annotating output `index` at the end of an allowed stream (b"" for none)."""
        return b""

    def stream_prompt_annotation(self, verdict: Verdict) -> bytes:
        """An event annotating the prompt at the start of a stream (b"" for none)."""
        return b""

    def is_end_event(self, data: str) -> bool:
        """An event that closes the stream (OpenAI's `[DONE]`): kept last, after any annotation."""
        return False
