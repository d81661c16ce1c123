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
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from safety_filter import metrics
from safety_filter.api.openai import (
    Kind,
    ShapeError,
    apply_verdicts,
    choice_texts,
    error_body,
    filter_error_body,
    prompt_blocked_body,
    prompt_filter_results,
    prompt_texts,
    route_kind,
)
from safety_filter.asgi.stream import StreamGuard, sse_event
from safety_filter.audit import AuditLog
from safety_filter.engine import Engine
from safety_filter.findings import Action, Verdict
from safety_filter.policy import Policy, Role, decide, failed_verdict, merge, strongest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ACTION_HEADER = b"x-safety-filter-action"

log = logging.getLogger("safety_filter.middleware")


class SafetyFilterMiddleware:
    """Wrap an ASGI app: `SafetyFilterMiddleware(app, policy="policy.yaml")`.

    `policy` is a path, a `Policy`, or None for the shipped default; `engine` shares one engine
    between several apps (or injects fake detectors in tests); `audit` overrides the policy's
    audit sink.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: Policy | str | Path | None = None,
        *,
        engine: Engine | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.app = app
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
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        policy = self.engine.policy
        kind = route_kind(scope.get("path", ""), policy.routes)
        if kind is None:
            await self.app(scope, receive, send)
            return
        await _Exchange(self, policy, kind, scope, receive, send).run()

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
    """Answer the client with this error instead of calling the app."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body


class _Stop(Exception):
    """Raised into the app's `send` once its response was settled: stops the app generating."""


class _Exchange:
    """One request and its response: all per-request state lives here."""

    def __init__(self, owner: SafetyFilterMiddleware, policy: Policy, kind: Kind, scope: Scope, receive: Receive, send: Send) -> None:
        self.app = owner.app
        self.engine = owner.engine
        self.audit = owner.audit
        self.policy = policy
        self.kind = kind
        self.scope = scope
        self.receive = receive
        self.send = send
        self.headers = {k.lower(): v for k, v in scope.get("headers", [])}
        self.request_id = self.headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        self.prompt: Verdict | None = None

    # -- request ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            raw = await self._read_body()
            texts = self._parse_request(raw)
        except _Reject as reject:
            await self._respond(reject.status, reject.body, Action.BLOCK)
            return
        self.prompt = merge(await self.engine.check(texts, "prompt"), self.policy)
        await self._record("prompt", self.prompt, texts)
        if self.prompt.blocked:
            if self.prompt.error is not None:
                await self._respond(503, filter_error_body(self.prompt), Action.BLOCK)
            else:
                await self._respond(400, prompt_blocked_body(self.prompt), Action.BLOCK)
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
                    raise _Reject(413, _too_large(limit))
            except ValueError:
                raise _Reject(400, error_body(400, "Content-Length is not a number", "invalid_request")) from None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise _Reject(499, error_body(499, "client disconnected", "client_closed_request"))
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Reject(413, _too_large(limit))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _parse_request(self, raw: bytes) -> list[str]:
        encoding = self.headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        body = _decompress(raw, encoding, self.policy.limits.max_request_bytes)
        try:
            data = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
        except UnicodeDecodeError:
            raise _Reject(400, error_body(400, "the request body is not valid UTF-8", "invalid_encoding")) from None
        except RecursionError:
            raise _Reject(400, error_body(400, "the request JSON is nested too deeply", "invalid_json")) from None
        except ValueError as exc:
            raise _Reject(400, error_body(400, f"the request body is not valid JSON: {exc}", "invalid_json")) from None
        try:
            texts = prompt_texts(data, self.kind)
        except ShapeError as exc:
            raise _Reject(400, error_body(400, f"cannot inspect this request: {exc}", "invalid_request")) from None
        if len(texts) > self.policy.limits.max_texts_per_request:
            limit = self.policy.limits.max_texts_per_request
            raise _Reject(413, error_body(413, f"the request carries more than {limit} texts", "too_many_texts"))
        return texts

    # -- helpers shared with the responder --------------------------------------------------

    async def _respond(self, status: int, body: dict[str, Any], action: Action | None) -> None:
        payload = json.dumps(body, ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        if action is not None:
            headers.append((ACTION_HEADER, action.value.encode()))
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": payload, "more_body": False})

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
        return await self.engine.check(texts, "completion")


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
        self.start = message
        headers = {k.lower(): v for k, v in message.get("headers", [])}
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        if message.get("status", 200) >= 400:
            self.mode = "pass"  # an error from the app carries no generated content
        elif content_type.startswith("text/event-stream"):
            self.mode = "stream" if encoding in ("", "identity") else "json"
            if self.mode == "stream":
                annotate = self.annotations_on
                self.guard = StreamGuard(self.exchange.check_completions, self.policy.streaming, self.exchange.kind, annotate)
        else:
            self.mode = "json"

    async def _on_body(self, body: bytes, more_body: bool) -> None:
        if self.start is None:
            raise RuntimeError("the app sent a response body before http.response.start")
        if self.mode == "pass":
            await self._send_start(Action.ALLOW)
            await self._send_body(body, more_body)
        elif self.mode == "stream":
            await self._on_stream(body, more_body)
        else:
            self.size += len(body)
            if self.size > self.policy.limits.max_response_bytes:
                await self._fail("the response is larger than limits.max_response_bytes")
                return
            self.chunks.append(body)
            if not more_body:
                await self._on_json(b"".join(self.chunks))

    async def _on_stream(self, body: bytes, more_body: bool) -> None:
        assert self.guard is not None
        try:
            out = await self.guard.feed(body) if body else b""
        except ValueError as exc:  # an event too large or malformed to inspect
            out = self.guard.fail(failed_verdict(self.policy, f"the stream cannot be inspected: {exc}"))
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
        await self._send_start(action)
        if annotate_prompt:
            first = {"id": "", "object": "", "created": 0, "model": "", "choices": []}
            first["prompt_filter_results"] = prompt_filter_results(prompt)
            await self._send_body(sse_event(first), True)

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
        try:
            body = json.loads(text)
            choices = choice_texts(body)
        except ValueError:  # ShapeError included
            body, choices = None, None
        if choices is None:  # not a completion we understand: inspect the whole body as text
            texts = [text]
            verdict = merge(await self.exchange.check_completions(texts), self.policy)
            await self.exchange._record("completion", verdict, texts)
            if verdict.blocked:
                await self._replace(502 if verdict.error else 400, _completion_blocked(verdict), Action.BLOCK)
            else:
                await self._send_original(raw, verdict.action)
            return
        verdicts = await self.exchange.check_completions([c.text for c in choices])
        by_index = {c.index: v for c, v in zip(choices, verdicts, strict=True)}
        assert self.exchange.prompt is not None
        action = strongest([self.exchange.prompt.action, *(v.action for v in verdicts)])
        for choice, verdict in zip(choices, verdicts, strict=True):
            await self.exchange._record("completion", verdict, [choice.text])
        annotate = self.annotations_on and (action is not Action.ALLOW or self.annotate_always)
        if not annotate and not any(v.blocked for v in verdicts):
            await self._send_original(raw, action)
            return
        apply_verdicts(body, by_index, self.exchange.prompt, annotate=annotate)
        if annotate and action is Action.ALLOW:
            action = Action.ANNOTATE
        await self._send_rewritten(json.dumps(body, ensure_ascii=False).encode(), action)

    async def _fail(self, reason: str) -> None:
        """The response can't be inspected: the fail mode decides."""
        verdict = failed_verdict(self.policy, reason)
        await self.exchange._record("completion", verdict, None)
        if verdict.blocked:
            await self._replace(502, error_body(502, f"safety-filter: {reason}", "content_filter_error", error_type="server_error"), Action.BLOCK)
        else:
            await self._send_original(b"".join(self.chunks), Action.ANNOTATE)

    # -- sending ---------------------------------------------------------------------------

    async def _send_start(self, action: Action, *, content_length: int | None = None, drop_encoding: bool = False) -> None:
        if self.started:
            return
        assert self.start is not None
        self.started = True
        headers = [(k, v) for k, v in self.start.get("headers", []) if k.lower() != ACTION_HEADER]
        if content_length is not None:
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers.append((b"content-length", str(content_length).encode()))
        if drop_encoding:
            headers = [(k, v) for k, v in headers if k.lower() != b"content-encoding"]
        headers.append((ACTION_HEADER, action.value.encode()))
        await self.exchange.send({**self.start, "headers": headers})

    async def _send_body(self, body: bytes, more_body: bool) -> None:
        if not more_body:
            self.finished = True
        await self.exchange.send({"type": "http.response.body", "body": body, "more_body": more_body})

    async def _send_original(self, raw: bytes, action: Action) -> None:
        await self._send_start(action)
        await self._send_body(raw, False)

    async def _send_rewritten(self, payload: bytes, action: Action) -> None:
        await self._send_start(action, content_length=len(payload), drop_encoding=True)
        await self._send_body(payload, False)

    async def _replace(self, status: int, body: dict[str, Any], action: Action) -> None:
        self.started = self.finished = True
        await self.exchange._respond(status, body, action)


def _completion_blocked(verdict: Verdict) -> dict[str, Any]:
    body = prompt_blocked_body(verdict)
    body["error"]["param"] = "completion"
    body["error"]["message"] = "The response was filtered by safety-filter's content management policy."
    return body


def _too_large(limit: int) -> dict[str, Any]:
    return error_body(413, f"the request body is larger than {limit} bytes", "request_too_large")


def _decompress(raw: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise _Reject(415, error_body(415, f"content encoding {encoding!r} is not supported", "unsupported_encoding"))
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(raw, limit + 1)
    except zlib.error:
        raise _Reject(400, error_body(400, f"the body is not valid {encoding} data", "invalid_encoding")) from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise _Reject(413, _too_large(limit))
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
