"""One request and its response through the filter: all per-request state lives here.

`Exchange` reads and inspects the request (the app is never called when it blocks), then calls
the app with the body it read; `Responder` (responder.py) wraps the app's `send`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from safety_filter import metrics
from safety_filter.api import Adapter
from safety_filter.asgi.answers import Reject, answer, decompress
from safety_filter.asgi.responder import Responder, Stop
from safety_filter.asgi.types import Header, Message, Receive, Scope, Send
from safety_filter.errors import Overloaded, ShapeError
from safety_filter.findings import Action, Verdict
from safety_filter.policy import Policy, Role, failed_verdict, merge

if TYPE_CHECKING:
    from safety_filter.asgi.middleware import SafetyFilterMiddleware


class Exchange:
    """One request and its response: all per-request state lives here."""

    def __init__(
        self,
        owner: SafetyFilterMiddleware,
        policy: Policy,
        adapter: Adapter,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
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
        except Reject as reject:
            await self._respond(
                reject.status, self.adapter.error(reject.status, reject.message, reject.code), Action.BLOCK
            )
            return
        try:
            verdicts = await self.engine.check(texts, "prompt")
        except Overloaded as exc:
            body = self.adapter.error(
                503,
                f"safety-filter is overloaded: {exc}; retry later",
                "content_filter_overloaded",
                error_type="server_error",
            )
            await self._respond(
                503, body, Action.BLOCK, [(b"retry-after", str(max(1, round(exc.retry_after))).encode())]
            )
            return
        self.prompt = merge(verdicts, self.policy)
        await self.record("prompt", self.prompt, texts)
        if self.prompt.blocked:
            answer = self.adapter.prompt_unchecked if self.prompt.error is not None else self.adapter.prompt_blocked
            await self._respond(*answer(self.prompt), Action.BLOCK)
            return
        responder = Responder(self)
        try:
            await self._call_app(raw, responder)
        except BaseException as exc:
            if not _contains_stop(exc):
                raise

    async def _call_app(self, raw: bytes, responder: Responder) -> None:
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
                    raise Reject(413, f"the request body is larger than {limit} bytes", "request_too_large")
            except ValueError:
                raise Reject(400, "Content-Length is not a number", "invalid_request") from None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise Reject(499, "client disconnected", "client_closed_request")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Reject(413, f"the request body is larger than {limit} bytes", "request_too_large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _parse_request(self, raw: bytes) -> list[str]:
        encoding = self.headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        body = decompress(raw, encoding, self.policy.limits.max_request_bytes)
        if (
            body.startswith(b"\xef\xbb\xbf")
            or body[:2] in (b"\xff\xfe", b"\xfe\xff")
            or (len(body) > 1 and 0 in body[:4])
        ):
            message = "the request body must be UTF-8 JSON with no byte order mark (UTF-16/32 and BOMs are refused)"
            raise Reject(400, message, "invalid_encoding")
        try:
            data = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
        except UnicodeDecodeError:
            raise Reject(400, "the request body is not valid UTF-8", "invalid_encoding") from None
        except RecursionError:
            raise Reject(400, "the request JSON is nested too deeply", "invalid_json") from None
        except ValueError as exc:
            raise Reject(400, f"the request body is not valid JSON: {exc}", "invalid_json") from None
        try:
            texts = self.adapter.request_texts(data, self.policy.passthrough_fields)
        except ShapeError as exc:
            raise Reject(400, f"cannot inspect this request: {exc}", "invalid_request") from None
        limits = self.policy.limits
        if len(texts) > limits.max_texts_per_request:
            raise Reject(413, f"the request carries more than {limits.max_texts_per_request} texts", "too_many_texts")
        if sum(map(len, texts)) > limits.max_text_chars:
            raise Reject(
                413,
                f"the request carries more than {limits.max_text_chars} characters of text to inspect",
                "too_much_text",
            )
        self.wants_stream = self.adapter.wants_stream(data)
        return texts

    # -- helpers shared with the responder --------------------------------------------------

    async def _respond(self, status: int, body: dict[str, Any], action: Action, headers: Sequence[Header] = ()) -> None:
        await answer(self.send, status, body, action, headers)

    async def record(self, role: Role, verdict: Verdict, texts: list[str] | None) -> None:
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


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _contains_stop(exc: BaseException) -> bool:
    if isinstance(exc, Stop):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_contains_stop(e) for e in exc.exceptions)
    return False
