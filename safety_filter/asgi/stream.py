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

from safety_filter.api.base import Adapter, Channel
from safety_filter.api.openai import OpenAIChat
from safety_filter.errors import ShapeError
from safety_filter.findings import Action, Verdict
from safety_filter.policy import StreamingSettings, strongest
from safety_filter.text.sentences import sentence_ends

CheckFn = Callable[[list[str]], Awaitable[list[Verdict]]]

_LINE_END = re.compile(r"\r\n|\n|\r")
_UNPARSED: Channel = (-1, "raw")  # event content that is not JSON we know: inspected as plain text


class SSEParser:
    """Splits a byte stream into complete SSE events, each kept as its exact bytes.

    Events end at an empty line, with lines ended by CRLF, LF or CR as the WHATWG spec says (so
    `\n\r\n` and `\n\r` end an event too). A CR at the end of the buffer waits for the next
    byte, which may make it a CRLF. Every event, and the unfinished rest, is capped at
    `max_event_bytes`: a bigger one cannot be inspected.
    """

    def __init__(self, max_event_bytes: int = 1 << 20) -> None:
        self._buffer = b""
        self._scanned = 0  # bytes of the buffer already known to hold no event end
        self._max = max_event_bytes

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        events = []
        while True:
            end = self._event_end()
            if end is None:
                break
            event, self._buffer, self._scanned = self._buffer[:end], self._buffer[end:], 0
            if len(event) > self._max:
                raise ValueError(f"a stream event exceeds {self._max} bytes")
            events.append(event)
        if len(self._buffer) > self._max:
            raise ValueError(f"a stream event exceeds {self._max} bytes")
        return events

    def _event_end(self) -> int | None:
        """Offset just past the blank line that ends the first event, if it has arrived."""
        buf, position, line_start = self._buffer, self._scanned, self._scanned
        while True:
            lf, cr = buf.find(b"\n", position), buf.find(b"\r", position)
            if lf < 0 and cr < 0:
                self._scanned = line_start
                return None
            if cr >= 0 and (lf < 0 or cr < lf):
                if cr + 1 >= len(buf):  # a lone CR at the end: it may be half of a CRLF
                    self._scanned = line_start
                    return None
                end = cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
                terminator_at = cr
            else:
                end, terminator_at = lf + 1, lf
            if terminator_at == line_start:  # an empty line: the event ends here
                return end
            position = line_start = end

    def flush(self) -> bytes:
        """Bytes left after the last complete event (a stream that ended mid-event)."""
        rest, self._buffer, self._scanned = self._buffer, b"", 0
        return rest


def event_fields(raw: bytes) -> tuple[list[str], str]:
    """The `data` values of one event, and the text of every line that is not a known field.

    Field names are matched as the spec says: up to the first colon, exactly; one space after the
    colon is dropped. A leading BOM is ignored.
    """
    text = raw.decode("utf-8", errors="replace").removeprefix("\ufeff")
    data, other = [], []
    for line in _LINE_END.split(text):
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name in ("event", "id", "retry") or not line:
            continue
        else:
            other.append(line)
    return data, "\n".join(other)


def event_data(raw: bytes) -> str | None:
    """The `data` field of one SSE event (lines joined by newlines), or None if it has none."""
    data, _ = event_fields(raw)
    return "\n".join(data) if data else None


class NDJSONParser:
    """Splits newline-delimited JSON (Ollama's stream format) into lines, each kept exactly."""

    def __init__(self, max_event_bytes: int = 1 << 20) -> None:
        self._buffer = b""
        self._max = max_event_bytes

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        *events, self._buffer = self._buffer.split(b"\n")
        events = [event + b"\n" for event in events]
        if any(len(event) > self._max for event in events) or len(self._buffer) > self._max:
            raise ValueError(f"a stream event exceeds {self._max} bytes")
        return events

    def flush(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        return rest


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def sentence_start(text: str, before: int, limit: int) -> int:
    """The start of the sentence that holds offset `before`, looking back at most `limit` chars."""
    floor = max(0, before - limit)
    ends = sentence_ends(text, floor, max(floor, before))
    start = ends[-1] if ends else floor
    while start < before and text[start].isspace():
        start += 1
    return start


@dataclass
class _Held:
    raw: bytes
    ends: dict[Channel, int]  # channel -> offset in that channel's text where this event ends


@dataclass
class _Channel:
    text: str = ""
    checked: int = 0  # text[:checked] has been checked
    released: int = 0  # events ending at or before this offset may be released
    verdict: Verdict | None = None  # the strongest non-blocking verdict seen (for annotations)
    complete: bool = False  # the adapter said its text is whole: released once checked, no holdback


@dataclass
class StreamGuard:
    """Holds a streamed completion back until it is checked. One per response.

    `check` scores a batch of texts as completions. `feed(bytes)` returns the bytes that may be
    sent now; `finish()` returns the rest once the app's stream has ended. After a block,
    `blocked` holds the verdict and both return nothing more.

    Text is tracked per channel (one choice, one field: content, reasoning, each tool call's
    arguments), so interleaved deltas are read in the order each channel writes them. Anything in
    an event that is not a chunk we know (plain text, JSON of another shape, lines that are not
    SSE fields) is inspected as plain text: nothing is released unread.
    """

    check: CheckFn
    settings: StreamingSettings
    adapter: Adapter = field(default_factory=OpenAIChat)
    annotate: bool = False
    blocked: Verdict | None = None
    _parser: SSEParser | NDJSONParser = field(default_factory=SSEParser)
    _held: list[_Held] = field(default_factory=list)
    _channels: dict[Channel, _Channel] = field(default_factory=dict)
    _done: bytes | None = None
    _last_chunk: dict[str, Any] = field(default_factory=dict)
    _blocked_index: int = 0
    _passthrough: bool = False  # fail-open after the stream became uninspectable

    def __post_init__(self) -> None:
        if self.adapter.stream_format == "ndjson":
            self._parser = NDJSONParser()

    @property
    def action(self) -> Action:
        if self.blocked is not None:
            return Action.BLOCK
        return strongest(c.verdict.action for c in self._channels.values() if c.verdict is not None)

    @property
    def verdict(self) -> Verdict | None:
        """The verdict worth recording: the block, or the strongest annotation, if any."""
        if self.blocked is not None:
            return self.blocked
        flagged = [c.verdict for c in self._channels.values() if c.verdict is not None]
        return max(flagged, key=lambda v: v.action.rank) if flagged else None

    async def feed(self, data: bytes) -> bytes:
        if self.blocked is not None:
            return b""
        if self._passthrough:
            return data
        for raw in self._parser.feed(data):
            self._hold(raw)
        due = {k: end for k, c in self._channels.items() if (end := self._check_end(c)) is not None}
        if due:
            await self._check(due, final=False)
        return self._ending() if self.blocked is not None else self._release()

    def fail(self, verdict: Verdict) -> bytes:
        """The stream can't be inspected further: under fail-closed, end it; else pass the rest."""
        if verdict.blocked:
            self.blocked = verdict
            return self._ending()
        self._passthrough = True
        self._channels.setdefault(_UNPARSED, _Channel()).verdict = verdict
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
        rest_of = {key: len(c.text) for key, c in self._channels.items() if c.checked < len(c.text)}
        await self._check(rest_of, final=True)
        if self.blocked is not None:
            return self._ending()
        for channel in self._channels.values():
            channel.released = len(channel.text)
        out = self._release()
        if self.annotate:
            flagged = {key[0]: c.verdict for key, c in self._channels.items() if c.verdict is not None}
            out += b"".join(self._annotation(index, verdict) for index, verdict in flagged.items())
        return out + (self._done or b"")

    def _hold(self, raw: bytes) -> None:
        if self.adapter.stream_format == "ndjson":
            data_lines, other = [raw.decode("utf-8", errors="replace").removeprefix("\ufeff")], ""
        else:
            data_lines, other = event_fields(raw)
        data = "\n".join(data_lines)
        if data_lines and self.adapter.is_end_event(data) and not other.strip():
            self._done = raw
            return
        ends: dict[Channel, int] = {}
        if other.strip():
            self._add(_UNPARSED, other + "\n", ends)
        for key, text in self._data_texts(data, data_lines):
            self._add(key, text, ends)
        self._held.append(_Held(raw, ends))

    def _data_texts(self, data: str, lines: list[str]) -> list[tuple[Channel, str]]:
        """The texts of an event's data: as the spec joins its lines, or, when that is not JSON,
        line by line, as many clients parse it. What is not a chunk we know is plain text."""
        if not lines:
            return []
        pieces = [data] if len(lines) == 1 or _parses(data) else lines
        out: list[tuple[Channel, str]] = []
        for piece in pieces:
            if not piece.strip() or self.adapter.is_end_event(piece):
                continue
            try:
                chunk = json.loads(piece)
                deltas = self.adapter.event_texts(chunk)
                for key in self.adapter.complete_channels(chunk):
                    ended = self._channels.setdefault(key, _Channel())
                    ended.complete, ended.released = True, max(ended.released, ended.checked)
            except (ValueError, ShapeError):
                out.append((_UNPARSED, piece + "\n"))
                continue
            if isinstance(chunk, dict):
                self._last_chunk = {**self._last_chunk, **chunk}  # keeps ids only the first event carries
            out.extend(deltas)
        return out

    def _add(self, key: Channel, text: str, ends: dict[Channel, int]) -> None:
        channel = self._channels.setdefault(key, _Channel())
        channel.text += text
        ends[key] = len(channel.text)

    def _check_end(self, channel: _Channel) -> int | None:
        """Where a check of `channel` would stop now, or None while it waits for more text.

        A check waits for `check_every_chars` new characters and then for the end of a sentence,
        and reads up to the last one: each sentence is then scored once and whole, not once per
        64 characters as its prefixes grow. Past `sentence_wait_chars` unchecked characters with
        no sentence end (code, lists) it reads everything.
        """
        new = len(channel.text) - channel.checked
        if channel.complete:
            return len(channel.text) if new > 0 else None
        if new < self.settings.check_every_chars:
            return None
        wait = self.settings.sentence_wait_chars
        if wait == 0 or new >= wait:
            return len(channel.text)
        ends = sentence_ends(channel.text, channel.checked)
        return ends[-1] if ends else None

    async def _check(self, ends: dict[Channel, int], *, final: bool) -> None:
        """Check each channel's new text up to its end offset, starting at the sentence before it
        (with at least `holdback_chars` of overlap, so a phrase split across checks is read whole)."""
        if not ends:
            return
        holdback = self.settings.holdback_chars
        keys, windows = list(ends), []
        for key in keys:
            channel = self._channels[key]
            start = sentence_start(channel.text, max(0, channel.checked - holdback), self.settings.context_chars)
            windows.append(channel.text[start : ends[key]])
        verdicts = await self.check(windows)
        for key, verdict in zip(keys, verdicts, strict=True):
            channel = self._channels[key]
            if verdict.blocked:
                self.blocked = verdict
                self._blocked_index = key[0]
                return
            flagged = verdict.action is not Action.ALLOW or verdict.error is not None
            if flagged and (channel.verdict is None or verdict.action.rank > channel.verdict.action.rank):
                channel.verdict = verdict
            channel.checked = ends[key]
            channel.released = max(channel.released, channel.checked - (0 if final or channel.complete else holdback))

    def _release(self) -> bytes:
        out = []
        while self._held and all(end <= self._channels[key].released for key, end in self._held[0].ends.items()):
            out.append(self._held.pop(0).raw)
        return b"".join(out)
    def _ending(self) -> bytes:
        """The events that close a blocked stream, as the API ends a filtered output."""
        assert self.blocked is not None
        self._held.clear()
        return self.adapter.stream_blocked(self.blocked, max(self._blocked_index, 0), self._last_chunk)

    def _annotation(self, index: int, verdict: Verdict) -> bytes:
        return self.adapter.stream_annotation(max(index, 0), verdict, self._last_chunk)
