"""The response half of an exchange: holds what the app sends until its content is checked.

- JSON responses are buffered, checked per output, and sent byte for byte when allowed (only
  rewritten to withhold a blocked output or to add annotations);
- streams go through a `StreamGuard` that releases each event only once its text is checked.
"""

from __future__ import annotations

import json
import zlib
from typing import TYPE_CHECKING, Any

from safety_filter.asgi.answers import ACTION_HEADER, Reject, decompress, stream_decoder
from safety_filter.asgi.stream import StreamGuard
from safety_filter.asgi.types import Message
from safety_filter.findings import Action
from safety_filter.policy import decide, failed_verdict, merge, strongest

if TYPE_CHECKING:
    from safety_filter.asgi.exchange import Exchange


class Stop(Exception):
    """Raised into the app's `send` once its response was settled: stops the app generating."""


class Responder:
    """Wraps the app's `send`: holds the response until its content is checked."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.policy = exchange.policy
        self.start: Message | None = None
        self.mode: str = ""  # "pass", "json", "stream"
        self.chunks: list[bytes] = []
        self.size = 0
        self.guard: StreamGuard | None = None
        self.decoder: Any = None  # zlib decompressor for a compressed stream
        self.undecodable = ""  # why a compressed stream cannot be decoded (the fail mode decides)
        self.error_status = False
        self.started = False
        self.finished = False

    @property
    def annotate_always(self) -> bool:
        return self.policy.annotations == "always"

    @property
    def annotations_on(self) -> bool:
        return self.policy.annotations != "never"

    async def send(self, message: Message) -> None:
        if self.finished:
            if message["type"] == "http.response.body":
                raise Stop()
            return
        if message["type"] == "http.response.start":
            self._on_start(message)
        elif message["type"] == "http.response.body":
            await self._on_body(message.get("body", b""), message.get("more_body", False))
        elif message["type"] == "http.response.trailers":
            await self.exchange.send(message)
        else:  # http.response.pathsend, zerocopysend...: a body we never see cannot pass unseen
            await self._fail(f"a {message['type']} response cannot be inspected")

    def _on_start(self, message: Message) -> None:
        """Choose how to read the response: as a stream when the request asked for one or the app
        labels it so (clients parse SSE whatever the label), else as one JSON body."""
        self.start = message
        headers = {k.lower(): v for k, v in message.get("headers", [])}
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        status = message.get("status", 200)
        self.error_status = status >= 400
        if self.error_status or not (self.exchange.wants_stream or content_type.startswith("text/event-stream")):
            self.mode = "json"  # error bodies too: inspected as text, they rarely carry any
            return
        self.mode = "stream"
        self.guard = StreamGuard(
            self.exchange.check_completions, self.policy.streaming, self.exchange.adapter, self.annotations_on
        )
        if encoding not in ("", "identity"):
            try:
                self.decoder = stream_decoder(encoding)
            except ValueError as exc:
                self.undecodable = str(exc)

    async def _on_body(self, body: bytes, more_body: bool) -> None:
        if self.start is None:
            raise RuntimeError("the app sent a response body before http.response.start")
        if self.mode == "stream":
            await self._on_stream(body, more_body)
            return
        self.size += len(body)
        if self.size > self.policy.limits.max_response_bytes:
            await self._fail("the response is larger than limits.max_response_bytes")
            return
        self.chunks.append(body)
        if not more_body:
            await self._on_json(b"".join(self.chunks))

    async def _on_stream(self, body: bytes, more_body: bool) -> None:
        """Feed the guard (decoded text when the stream is compressed: what it releases is then
        sent decoded, without `content-encoding`)."""
        assert self.guard is not None
        try:
            if self.undecodable:
                raise ValueError(self.undecodable)
            if self.decoder is not None and body:
                body = self.decoder.decompress(body, self.policy.limits.max_response_bytes)
                if self.decoder.unconsumed_tail:
                    raise ValueError("the stream decompresses past limits.max_response_bytes")
            out = await self.guard.feed(body) if body else b""
        except (ValueError, zlib.error) as exc:  # an event too large, or a body not decodable
            out = self.guard.fail(failed_verdict(self.policy, f"the stream cannot be inspected: {exc}"))
            if self.decoder is not None or self.undecodable:
                out = b"" if not self.guard.blocked else out  # never relay bytes nobody could read
        if more_body and self.guard.blocked is None:
            if out:
                await self._send_stream_start()
                await self._send_body(out, True)
            return
        if self.guard.blocked is None:
            out += await self.guard.finish()
        await self._send_stream_start()
        await self._send_body(out, False)
        await self.exchange.record("completion", self.guard.verdict or decide((), self.policy, "completion"), None)

    async def _send_stream_start(self) -> None:
        """Headers go out with the first released bytes; so do the prompt's annotations."""
        if self.started:
            return
        assert self.guard is not None and self.exchange.prompt is not None
        prompt = self.exchange.prompt
        action = strongest([prompt.action, self.guard.action])
        annotate_prompt = self.annotations_on and (prompt.action is Action.ANNOTATE or self.annotate_always)
        if annotate_prompt and action is Action.ALLOW:
            action = Action.ANNOTATE
        # The guard may end the stream with bytes of its own, so no length is promised; a
        # compressed stream is relayed decoded.
        await self._send_start(action, content_length=-1, drop_encoding=self.decoder is not None)
        if annotate_prompt and (first := self.exchange.adapter.stream_prompt_annotation(prompt)):
            await self._send_body(first, True)

    async def _on_json(self, raw: bytes) -> None:
        assert self.start is not None
        headers = {k.lower(): v for k, v in self.start.get("headers", [])}
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        try:
            decoded = decompress(raw, encoding, self.policy.limits.max_response_bytes)
        except Reject:
            await self._fail(f"the response body is not valid {encoding} data or decompresses past the size limit")
            return
        text = decoded.decode("utf-8", errors="replace")
        adapter = self.exchange.adapter
        try:
            body = json.loads(text)
            choices, rest = (None, "") if self.error_status else adapter.response_texts(body)
        except ValueError:  # ShapeError included
            body, choices, rest = None, None, ""
        if choices is None:  # an error, or not a completion we understand: the whole body is text
            texts = [text]
            verdict = merge(await self.exchange.check_completions(texts), self.policy)
            await self.exchange.record("completion", verdict, texts)
            if verdict.blocked:
                await self._replace(*adapter.completion_blocked(verdict), Action.BLOCK)
            else:
                await self._send_original(raw, "error" if self.error_status else verdict.action)
            return
        texts = [c.text for c in choices] + ([rest] if rest else [])
        verdicts = await self.exchange.check_completions(texts)
        for text, verdict in zip(texts, verdicts, strict=True):
            await self.exchange.record("completion", verdict, [text])
        if rest and verdicts[-1].blocked:  # text outside the choices: nothing of it can be kept
            await self._replace(*adapter.completion_blocked(verdicts[-1]), Action.BLOCK)
            return
        verdicts = verdicts[: len(choices)]
        by_position = {c.position: v for c, v in zip(choices, verdicts, strict=True)}
        assert self.exchange.prompt is not None
        action = strongest([self.exchange.prompt.action, *(v.action for v in verdicts)])
        annotate = self.annotations_on and (action is not Action.ALLOW or self.annotate_always)
        if not annotate and not any(v.blocked for v in verdicts):
            await self._send_original(raw, action)
            return
        adapter.withhold(body, by_position, self.exchange.prompt, annotate=annotate)
        if annotate and action is Action.ALLOW:
            action = Action.ANNOTATE
        await self._send_rewritten(json.dumps(body, ensure_ascii=False).encode(), action)

    async def _fail(self, reason: str) -> None:
        """The response can't be inspected: the fail mode decides."""
        verdict = failed_verdict(self.policy, reason)
        await self.exchange.record("completion", verdict, None)
        if verdict.blocked:
            await self._replace(
                502,
                self.exchange.adapter.error(
                    502, f"safety-filter: {reason}", "content_filter_error", error_type="server_error"
                ),
                Action.BLOCK,
            )
        else:
            await self._send_original(b"".join(self.chunks), Action.ANNOTATE)

    # -- sending ---------------------------------------------------------------------------

    async def _send_start(
        self, action: Action | str, *, content_length: int | None = None, drop_encoding: bool = False
    ) -> None:
        if self.started:
            return
        assert self.start is not None
        self.started = True
        headers = [(k, v) for k, v in self.start.get("headers", []) if k.lower() != ACTION_HEADER]
        if content_length is not None:
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            if content_length >= 0:
                headers.append((b"content-length", str(content_length).encode()))
        if drop_encoding:
            headers = [(k, v) for k, v in headers if k.lower() != b"content-encoding"]
        value = action.value if isinstance(action, Action) else action
        headers.append((ACTION_HEADER, value.encode()))
        await self.exchange.send({**self.start, "headers": headers})

    async def _send_body(self, body: bytes, more_body: bool) -> None:
        if not more_body:
            self.finished = True
        await self.exchange.send({"type": "http.response.body", "body": body, "more_body": more_body})

    async def _send_original(self, raw: bytes, action: Action | str) -> None:
        await self._send_start(action)
        await self._send_body(raw, False)

    async def _send_rewritten(self, payload: bytes, action: Action) -> None:
        await self._send_start(action, content_length=len(payload), drop_encoding=True)
        await self._send_body(payload, False)

    async def _replace(self, status: int, body: dict[str, Any], action: Action) -> None:
        self.started = self.finished = True
        await self.exchange._respond(status, body, action)
