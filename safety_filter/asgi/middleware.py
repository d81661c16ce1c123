"""`SafetyFilterMiddleware`: a pure ASGI middleware that filters OpenAI-compatible traffic.

For each POST to a chat/completions route it reads the request, checks every text in it, and
either answers itself (blocked: the app is never called) or calls the app and checks what the
app answers before any of it reaches the client:

- JSON responses are buffered, checked per choice, and sent byte for byte when allowed (only
  rewritten to withhold a blocked choice or to add annotations);
- SSE streams go through a `StreamGuard` that releases each event only once its text is checked.

Every inspected response carries `x-safety-filter-action: allow|annotate|block`. Other routes,
methods and scope types pass straight through.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from safety_filter import metrics
from safety_filter.api import Adapter, adapter_for, unsupported_route
from safety_filter.api.openai import error_body
from safety_filter.asgi.canonical import AmbiguousRequest, apply, canonical_target
from safety_filter.asgi.stream import StreamGuard
from safety_filter.audit import AuditLog
from safety_filter.engine import Engine
from safety_filter.errors import Overloaded, ShapeError
from safety_filter.findings import Action, Verdict
from safety_filter.policy import Policy, Role, decide, failed_verdict, merge, strongest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Header = tuple[bytes, bytes]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ACTION_HEADER = b"x-safety-filter-action"

log = logging.getLogger("safety_filter.middleware")


class SafetyFilterMiddleware:
    """Wrap an ASGI app: `SafetyFilterMiddleware(app, policy="policy.yaml")`.

    `policy` is a path, a `Policy`, or None for the shipped default; `engine` shares one engine
    between several apps (or injects fake detectors in tests); `audit` overrides the policy's
    audit sink. With `inspected_routes_only` (what `serve` uses in front of a model server),
    anything that is neither an inspected route nor in the policy's `passthrough_routes` gets a
    JSON 404: the proxy forwards nothing it was not told about.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: Policy | str | Path | None = None,
        *,
        engine: Engine | None = None,
        audit: AuditLog | None = None,
        inspected_routes_only: bool = False,
    ) -> None:
        self.app = app
        self.inspected_routes_only = inspected_routes_only
        if engine is None:
            engine = Engine(policy) if isinstance(policy, Policy) else Engine.from_policy_file(policy)
        self.engine = engine
        if audit is None:
            settings = (policy if isinstance(policy, Policy) else engine.policy).audit
            audit = AuditLog(settings.sink, include_excerpts=settings.include_excerpts, redact=settings.redact)
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._loading_on_startup(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            target = canonical_target(scope)
        except AmbiguousRequest as exc:
            await _answer(send, 400, error_body(400, f"safety-filter: {exc}", "ambiguous_request"), Action.BLOCK)
            return
        apply(scope, target)
        policy = self.engine.policy
        adapter = adapter_for(target.path, policy.routes)
        if adapter is not None and target.method == "POST":
            await _Exchange(self, policy, adapter, scope, receive, send).run()
        elif adapter is not None and not (target.method in ("OPTIONS", "HEAD") and not _has_body(scope)):
            body = error_body(405, f"safety-filter: {target.method} is not allowed on {target.path}: only POST is inspected", "method_not_allowed")
            await _answer(send, 405, body, Action.BLOCK, [(b"allow", b"POST, OPTIONS")])
        elif unsupported_route(target.path) and target.method not in ("GET", "OPTIONS", "HEAD", "DELETE"):
            message = f"safety-filter cannot inspect {target.path} yet, so it is refused rather than passed unread"
            await _answer(send, 501, error_body(501, message, "route_not_inspected"), Action.BLOCK)
        elif self.inspected_routes_only and not policy.passes_through(target.method, target.path):
            message = f"{target.method} {target.path} is neither inspected nor in the policy's passthrough_routes"
            await _answer(send, 404, error_body(404, message, "route_not_forwarded"), Action.BLOCK)
        else:
            await self.app(scope, receive, send)

    def _loading_on_startup(self, receive: Receive) -> Receive:
        """Load the detectors while the server starts, so the first request doesn't wait."""

        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.engine.aload()
                if self.audit.enabled and self.audit.include_excerpts and self.audit.redact:
                    from safety_filter import pii

                    await asyncio.to_thread(pii.warm_up)
            return message

        return wrapped


class _Reject(Exception):
    """Answer the client with this error (in the API's own error format) instead of calling the app."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class _Stop(Exception):
    """Raised into the app's `send` once its response was settled: stops the app generating."""


class _Exchange:
    """One request and its response: all per-request state lives here."""

    def __init__(self, owner: SafetyFilterMiddleware, policy: Policy, adapter: Adapter, scope: Scope, receive: Receive, send: Send) -> None:
        self.app = owner.app
        self.engine = owner.engine
        self.audit = owner.audit
        self.policy = policy
        self.adapter = adapter
        self.scope = scope
        self.receive = receive
        self.send = send
        self.headers = {k.lower(): v for k, v in scope.get("headers", [])}
        self.request_id = self.headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        self.prompt: Verdict | None = None
        self.wants_stream = False  # the request asked for a stream: its response is read as SSE

    # -- request ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            raw = await self._read_body()
            texts = self._parse_request(raw)
        except _Reject as reject:
            await self._respond(reject.status, self.adapter.error(reject.status, reject.message, reject.code), Action.BLOCK)
            return
        try:
            verdicts = await self.engine.check(texts, "prompt")
        except Overloaded as exc:
            body = self.adapter.error(503, f"safety-filter is overloaded: {exc}; retry later", "content_filter_overloaded", error_type="server_error")
            await self._respond(503, body, Action.BLOCK, [(b"retry-after", str(max(1, round(exc.retry_after))).encode())])
            return
        self.prompt = merge(verdicts, self.policy)
        await self._record("prompt", self.prompt, texts)
        if self.prompt.blocked:
            answer = self.adapter.prompt_unchecked if self.prompt.error is not None else self.adapter.prompt_blocked
            await self._respond(*answer(self.prompt), Action.BLOCK)
            return
        responder = _Responder(self)
        try:
            await self._call_app(raw, responder)
        except BaseException as exc:
            if not _contains_stop(exc):
                raise

    async def _call_app(self, raw: bytes, responder: _Responder) -> None:
        """Call the app with the body already read; once the response is settled, report a disconnect."""
        replayed = False

        async def receive() -> Message:
            nonlocal replayed
            if responder.finished:
                return {"type": "http.disconnect"}
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await self.receive()

        await self.app(self.scope, receive, responder.send)

    async def _read_body(self) -> bytes:
        limit = self.policy.limits.max_request_bytes
        declared = self.headers.get(b"content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    raise _Reject(413, f"the request body is larger than {limit} bytes", "request_too_large")
            except ValueError:
                raise _Reject(400, "Content-Length is not a number", "invalid_request") from None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise _Reject(499, "client disconnected", "client_closed_request")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Reject(413, f"the request body is larger than {limit} bytes", "request_too_large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _parse_request(self, raw: bytes) -> list[str]:
        encoding = self.headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        body = _decompress(raw, encoding, self.policy.limits.max_request_bytes)
        if body.startswith(b"\xef\xbb\xbf") or body[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(body) > 1 and 0 in body[:4]):
            message = "the request body must be UTF-8 JSON with no byte order mark (UTF-16/32 and BOMs are refused)"
            raise _Reject(400, message, "invalid_encoding")
        try:
            data = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
        except UnicodeDecodeError:
            raise _Reject(400, "the request body is not valid UTF-8", "invalid_encoding") from None
        except RecursionError:
            raise _Reject(400, "the request JSON is nested too deeply", "invalid_json") from None
        except ValueError as exc:
            raise _Reject(400, f"the request body is not valid JSON: {exc}", "invalid_json") from None
        try:
            texts = self.adapter.request_texts(data, self.policy.passthrough_fields)
        except ShapeError as exc:
            raise _Reject(400, f"cannot inspect this request: {exc}", "invalid_request") from None
        limits = self.policy.limits
        if len(texts) > limits.max_texts_per_request:
            raise _Reject(413, f"the request carries more than {limits.max_texts_per_request} texts", "too_many_texts")
        if sum(map(len, texts)) > limits.max_text_chars:
            raise _Reject(413, f"the request carries more than {limits.max_text_chars} characters of text to inspect", "too_much_text")
        self.wants_stream = self.adapter.wants_stream(data)
        return texts

    # -- helpers shared with the responder --------------------------------------------------

    async def _respond(self, status: int, body: dict[str, Any], action: Action, headers: Sequence[Header] = ()) -> None:
        await _answer(self.send, status, body, action, headers)

    async def _record(self, role: Role, verdict: Verdict, texts: list[str] | None) -> None:
        """Count every verdict; write an audit line for every one that was not a plain allow.

        Redacting excerpts runs presidio (tens of ms), so that write happens off the event loop.
        """
        metrics.record(role, verdict)
        if not self.audit.enabled or (verdict.action is Action.ALLOW and verdict.error is None):
            return
        write = functools.partial(
            self.audit.record,
            request_id=self.request_id,
            route=self.scope.get("path", ""),
            role=role,
            verdict=verdict,
            policy_version=self.policy.label,
            texts=texts,
            detector_versions=self.engine.versions(),
        )
        if self.audit.include_excerpts and texts:
            await asyncio.to_thread(write)
        else:
            write()

    async def check_completions(self, texts: list[str]) -> list[Verdict]:
        """Completion verdicts; an overloaded engine means uninspected: the fail mode decides."""
        try:
            return await self.engine.check(texts, "completion")
        except Overloaded as exc:
            return [failed_verdict(self.policy, f"safety-filter is overloaded: {exc}") for _ in texts]


class _Responder:
    """Wraps the app's `send`: holds the response until its content is checked."""

    def __init__(self, exchange: _Exchange) -> None:
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
                raise _Stop()
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
        self.guard = StreamGuard(self.exchange.check_completions, self.policy.streaming, self.exchange.adapter, self.annotations_on)
        if encoding not in ("", "identity"):
            try:
                self.decoder = _stream_decoder(encoding)
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
        await self.exchange._record("completion", self.guard.verdict or decide((), self.policy, "completion"), None)

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
            decoded = _decompress(raw, encoding, self.policy.limits.max_response_bytes)
        except _Reject:
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
            await self.exchange._record("completion", verdict, texts)
            if verdict.blocked:
                await self._replace(*adapter.completion_blocked(verdict), Action.BLOCK)
            else:
                await self._send_original(raw, "error" if self.error_status else verdict.action)
            return
        texts = [c.text for c in choices] + ([rest] if rest else [])
        verdicts = await self.exchange.check_completions(texts)
        for text, verdict in zip(texts, verdicts, strict=True):
            await self.exchange._record("completion", verdict, [text])
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
        await self.exchange._record("completion", verdict, None)
        if verdict.blocked:
            await self._replace(502, self.exchange.adapter.error(502, f"safety-filter: {reason}", "content_filter_error", error_type="server_error"), Action.BLOCK)
        else:
            await self._send_original(b"".join(self.chunks), Action.ANNOTATE)

    # -- sending ---------------------------------------------------------------------------

    async def _send_start(self, action: Action | str, *, content_length: int | None = None, drop_encoding: bool = False) -> None:
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


async def _answer(send: Send, status: int, body: dict[str, Any], action: Action | str, headers: Sequence[Header] = ()) -> None:
    """Answer with a JSON body of the filter's own (errors and blocks)."""
    payload = json.dumps(body, ensure_ascii=False).encode()
    value = action.value if isinstance(action, Action) else action
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), (ACTION_HEADER, value.encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*start, *headers]})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def _has_body(scope: Scope) -> bool:
    headers = {k.lower(): v for k, v in scope.get("headers", [])}
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0").strip() not in (b"", b"0")


def _stream_decoder(encoding: str) -> Any:
    """An incremental decompressor for a compressed stream, or ValueError for an unknown coding."""
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)
    raise ValueError(f"content encoding {encoding!r} cannot be decoded for inspection")


def _decompress(raw: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise _Reject(415, f"content encoding {encoding!r} is not supported", "unsupported_encoding")
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(raw, limit + 1)
    except zlib.error:
        raise _Reject(400, f"the body is not valid {encoding} data", "invalid_encoding") from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise _Reject(413, f"the request body is larger than {limit} bytes", "request_too_large")
    return out


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _contains_stop(exc: BaseException) -> bool:
    if isinstance(exc, _Stop):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_contains_stop(e) for e in exc.exceptions)
    return False
