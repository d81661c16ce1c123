"""Server-sent events: parse them, and hold them back until the text they carry is checked.

`StreamGuard` is the streaming half of the filter. Each SSE event is kept, as the exact bytes the
app sent, until every character of text it adds has been checked, and until it lies at least
`holdback_chars` before the end of the checked text: a phrase split across any number of events
is therefore seen whole before any byte of it leaves. Allowed events are released unchanged and
in order; on a block the held events are dropped and the stream ends with a `content_filter`
chunk and `data: [DONE]`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from safety_filter.api.openai import Kind, ShapeError, content_filter_results, delta_texts
from safety_filter.findings import Action, Verdict
from safety_filter.policy import StreamingSettings, strongest

CheckFn = Callable[[list[str]], Awaitable[list[Verdict]]]

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE_END = re.compile(r"\r\n|\n|\r")
_UNPARSED = -1  # pseudo-choice for event data that is not JSON: inspected as plain text


class SSEParser:
    """Splits a byte stream into complete SSE events, each kept as its exact bytes."""

    def __init__(self, max_event_bytes: int = 1 << 20) -> None:
        self._buffer = b""
        self._max = max_event_bytes

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        events = []
        while True:
            end = _EVENT_END.search(self._buffer)
            if end is None:
                break
            events.append(self._buffer[: end.end()])
            self._buffer = self._buffer[end.end() :]
        if len(self._buffer) > self._max:
            raise ValueError(f"a stream event exceeds {self._max} bytes")
        return events

    def flush(self) -> bytes:
        """Bytes left after the last complete event (a stream that ended mid-event)."""
        rest, self._buffer = self._buffer, b""
        return rest


def event_data(raw: bytes) -> str | None:
    """The `data` field of one SSE event (lines joined by newlines), or None if it has none."""
    text = raw.decode("utf-8", errors="replace")
    lines = [line for line in _LINE_END.split(text) if line.startswith("data:")]
    if not lines:
        return None
    return "\n".join(line[6:] if line.startswith("data: ") else line[5:] for line in lines)


def sse_event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


@dataclass
class _Held:
    raw: bytes
    ends: dict[int, int]  # choice index -> offset in that choice's text where this event ends


@dataclass
class _Choice:
    text: str = ""
    checked: int = 0  # text[:checked] has been checked
    released: int = 0  # events ending at or before this offset may be released
    verdict: Verdict | None = None  # the strongest non-blocking verdict seen (for annotations)


@dataclass
class StreamGuard:
    """Holds a streamed completion back until it is checked. One per response.

    `check` scores a batch of texts as completions. `feed(bytes)` returns the bytes that may be
    sent now; `finish()` returns the rest once the app's stream has ended. After a block,
    `blocked` holds the verdict and both return nothing more.
    """

    check: CheckFn
    settings: StreamingSettings
    kind: Kind = "chat"
    annotate: bool = False
    blocked: Verdict | None = None
    _parser: SSEParser = field(default_factory=SSEParser)
    _held: list[_Held] = field(default_factory=list)
    _choices: dict[int, _Choice] = field(default_factory=dict)
    _done: bytes | None = None
    _last_chunk: dict[str, Any] = field(default_factory=dict)
    _blocked_index: int = 0
    _passthrough: bool = False  # fail-open after the stream became uninspectable

    @property
    def action(self) -> Action:
        if self.blocked is not None:
            return Action.BLOCK
        return strongest(c.verdict.action for c in self._choices.values() if c.verdict is not None)

    @property
    def verdict(self) -> Verdict | None:
        """The verdict worth recording: the block, or the strongest annotation, if any."""
        if self.blocked is not None:
            return self.blocked
        flagged = [c.verdict for c in self._choices.values() if c.verdict is not None]
        return max(flagged, key=lambda v: v.action.rank) if flagged else None

    async def feed(self, data: bytes) -> bytes:
        if self.blocked is not None:
            return b""
        if self._passthrough:
            return data
        for raw in self._parser.feed(data):
            self._hold(raw)
        due = [i for i, c in self._choices.items() if len(c.text) - c.checked >= self.settings.check_every_chars]
        if due:
            await self._check(due, final=False)
        return self._ending() if self.blocked is not None else self._release()

    def fail(self, verdict: Verdict) -> bytes:
        """The stream can't be inspected further: under fail-closed, end it; else pass the rest."""
        if verdict.blocked:
            self.blocked = verdict
            return self._ending()
        self._passthrough = True
        self._choices.setdefault(_UNPARSED, _Choice()).verdict = verdict
        out = b"".join(held.raw for held in self._held) + self._parser.flush()
        self._held.clear()
        return out

    async def finish(self) -> bytes:
        """The app's stream ended: check what is left, release it, and close the stream."""
        if self.blocked is not None:
            return b""
        if self._passthrough:
            return self._done or b""
        rest = self._parser.flush()
        if rest.strip():
            self._hold(rest)
        await self._check([i for i, c in self._choices.items() if c.checked < len(c.text)], final=True)
        if self.blocked is not None:
            return self._ending()
        for choice in self._choices.values():
            choice.released = len(choice.text)
        out = self._release()
        if self.annotate:
            out += b"".join(self._annotation(i, c.verdict) for i, c in self._choices.items() if c.verdict is not None)
        return out + (self._done or b"")

    def _hold(self, raw: bytes) -> None:
        data = event_data(raw)
        ends: dict[int, int] = {}
        if data is not None and data.strip() == "[DONE]":
            self._done = raw
            return
        if data is not None:
            try:
                chunk = json.loads(data)
                deltas = delta_texts(chunk)
            except (ValueError, ShapeError):
                deltas = None
            if deltas is None:
                self._add(_UNPARSED, data, ends)
            else:
                self._last_chunk = chunk
                for delta in deltas:
                    self._add(delta.index, delta.text, ends)
        self._held.append(_Held(raw, ends))

    def _add(self, index: int, text: str, ends: dict[int, int]) -> None:
        choice = self._choices.setdefault(index, _Choice())
        choice.text += text
        ends[index] = len(choice.text)

    async def _check(self, indices: list[int], *, final: bool) -> None:
        if not indices:
            return
        context = self.settings.context_chars
        windows = [self._choices[i].text[max(0, self._choices[i].checked - context) :] for i in indices]
        verdicts = await self.check(windows)
        for index, verdict in zip(indices, verdicts, strict=True):
            choice = self._choices[index]
            if verdict.blocked:
                self.blocked = verdict
                self._blocked_index = index
                return
            if verdict.action is not Action.ALLOW or verdict.error is not None:
                if choice.verdict is None or verdict.action.rank > choice.verdict.action.rank:
                    choice.verdict = verdict
            choice.checked = len(choice.text)
            holdback = 0 if final else self.settings.holdback_chars
            choice.released = max(choice.released, choice.checked - holdback)

    def _release(self) -> bytes:
        out = []
        while self._held and all(end <= self._choices[i].released for i, end in self._held[0].ends.items()):
            out.append(self._held.pop(0).raw)
        return b"".join(out)

    def _ending(self) -> bytes:
        """The chunk that closes a blocked stream, as Azure sends it, then [DONE]."""
        assert self.blocked is not None
        self._held.clear()
        index = max(self._blocked_index, 0)
        choice: dict[str, Any] = {"index": index, "finish_reason": "content_filter"}
        if self.kind == "chat":
            choice["delta"] = {}
        else:
            choice["text"] = ""
        choice["content_filter_results"] = content_filter_results(self.blocked)
        return sse_event(self._chunk([choice])) + sse_event("[DONE]")

    def _annotation(self, index: int, verdict: Verdict) -> bytes:
        choice: dict[str, Any] = {"index": max(index, 0), "finish_reason": None}
        choice["delta" if self.kind == "chat" else "text"] = {} if self.kind == "chat" else ""
        choice["content_filter_results"] = content_filter_results(verdict)
        return sse_event(self._chunk([choice]))

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        last = self._last_chunk
        return {
            "id": last.get("id", ""),
            "object": last.get("object", "chat.completion.chunk" if self.kind == "chat" else "text_completion"),
            "created": last.get("created", 0),
            "model": last.get("model", ""),
            "choices": choices,
        }
