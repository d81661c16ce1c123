"""`SafetyFilterMiddleware`: a pure ASGI middleware that filters LLM API traffic.

It routes each HTTP request once, on its canonical (method, path) (`canonical.py`): a POST to a
route an API adapter knows becomes an `Exchange` (`exchange.py`: the request is inspected and the
app is never called when it blocks; `responder.py`: the app's answer is inspected before any of
it reaches the client); ambiguous forms, other methods on inspected routes and routes of APIs
without an adapter are refused; with `inspected_routes_only` (serve), so is anything not in the
policy's `passthrough_routes`. Everything else, websockets included, passes to the app untouched.

Every inspected response carries `x-safety-filter-action: allow|annotate|block|error`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from safety_filter.api import adapter_for, unsupported_route
from safety_filter.api.openai import error_body
from safety_filter.asgi.answers import answer, has_body
from safety_filter.asgi.canonical import AmbiguousRequest, apply, canonical_target
from safety_filter.asgi.exchange import Exchange
from safety_filter.asgi.types import ASGIApp, Message, Receive, Scope, Send
from safety_filter.audit import AuditLog
from safety_filter.engine import Engine
from safety_filter.errors import ConfigurationError
from safety_filter.findings import Action
from safety_filter.policy import AuditSettings, Policy

__all__ = ["ASGIApp", "Message", "Receive", "SafetyFilterMiddleware", "Scope", "Send"]

log = logging.getLogger("safety_filter.middleware")


class SafetyFilterMiddleware:
    """Wrap an ASGI app: `SafetyFilterMiddleware(app, policy="policy.yaml")`.

    `policy` is a path, a `Policy`, or None for the shipped default; `engine` shares one engine
    between several apps (or injects fake detectors in tests); `audit` overrides the policy's
    audit settings, which otherwise follow the policy as it reloads. Nothing loads here: the
    lifespan start-up loads the detectors in a thread (and fails the start-up with the message
    when the policy, a list or a model is unusable), or the first request does when the server
    runs no lifespan. The lifespan shutdown closes the engine
    and audit log this filter created (given ones too with `close_on_shutdown`).

    With `inspected_routes_only` (what `serve` uses in front of a model server), anything that is
    neither an inspected route nor in the policy's `passthrough_routes` gets a JSON 404: the
    proxy forwards nothing it was not told about.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: Policy | str | Path | None = None,
        *,
        engine: Engine | None = None,
        audit: AuditLog | None = None,
        inspected_routes_only: bool = False,
        close_on_shutdown: bool = False,
    ) -> None:
        # Starlette builds its middleware inside the server's lifespan call, where an exception
        # reads as "lifespan unsupported" and every request then fails: so a bad policy is kept
        # here and reported by the lifespan start-up (the server exits) or as a 500 per request.
        self.app = app
        self.inspected_routes_only = inspected_routes_only
        self._misconfigured: str | None = None
        self._owned: list[Engine | AuditLog] = []  # closed at lifespan shutdown
        if engine is not None and close_on_shutdown:
            self._owned.append(engine)
        if engine is None:
            path = None if isinstance(policy, Policy) else policy
            engine = Engine(policy if isinstance(policy, Policy) else None, policy_path=path)
            self._owned.append(engine)
        self.engine = engine
        try:
            settings = engine.policy.audit  # reads and validates the policy file; loads no model
        except ConfigurationError as exc:
            self._misconfigured = str(exc)
            settings = AuditSettings()
        # An audit log built from the policy follows its reloads; a given one keeps its settings.
        self._audit_settings: AuditSettings | None = None
        if audit is None:
            audit = AuditLog(settings.sink, include_excerpts=settings.include_excerpts, redact=settings.redact)
            self._audit_settings = settings
            self._owned.append(audit)
        elif close_on_shutdown:
            self._owned.append(audit)
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not await self._ready(send):
            return
        try:
            target = canonical_target(scope)
        except AmbiguousRequest as exc:
            await answer(send, 400, error_body(400, f"safety-filter: {exc}", "ambiguous_request"), Action.BLOCK)
            return
        apply(scope, target)
        policy = self.engine.policy
        self._follow_audit(policy)
        adapter = adapter_for(target.path, policy.routes)
        if adapter is not None and target.method == "POST":
            await Exchange(self, policy, adapter, scope, receive, send).run()
        elif adapter is not None and not (target.method in ("OPTIONS", "HEAD") and not has_body(scope)):
            body = error_body(
                405,
                f"safety-filter: {target.method} is not allowed on {target.path}: only POST is inspected",
                "method_not_allowed",
            )
            await answer(send, 405, body, Action.BLOCK, [(b"allow", b"POST, OPTIONS")])
        elif unsupported_route(target.path) and target.method != "OPTIONS":
            message = f"safety-filter cannot inspect {target.path} yet, so it is refused rather than passed unread"
            await answer(send, 501, error_body(501, message, "route_not_inspected"), Action.BLOCK)
        elif self.inspected_routes_only and not policy.passes_through(target.method, target.path):
            message = f"{target.method} {target.path} is neither inspected nor in the policy's passthrough_routes"
            await answer(send, 404, error_body(404, message, "route_not_forwarded"), Action.BLOCK)
        else:
            await self.app(scope, receive, send)

    def _follow_audit(self, policy: Policy) -> None:
        """Apply a reloaded policy's audit settings to the audit log built from the policy."""
        settings = policy.audit
        if self._audit_settings is None or settings == self._audit_settings:
            return
        self.audit.configure(settings.sink, include_excerpts=settings.include_excerpts, redact=settings.redact)
        self._audit_settings = settings
        log.info("audit settings from policy %s: sink %s, excerpts %s, redact %s",
                 policy.label, settings.sink, settings.include_excerpts, settings.redact)

    async def _ready(self, send: Send) -> bool:
        """Load on the first request when no lifespan did (in a thread); else answer a 500."""
        if self._misconfigured is None and not self.engine.loaded:
            await self._start()
        if self._misconfigured is None:
            return True
        message = f"safety-filter is misconfigured, so nothing is served: {self._misconfigured}"
        body = error_body(500, message, "content_filter_misconfigured", error_type="server_error")
        await answer(send, 500, body, "error")
        return False

    async def _start(self) -> None:
        """Load and warm up the detectors off the event loop; a failure marks the filter misconfigured."""
        try:
            await self.engine.aload()
            if self.audit.enabled and self.audit.include_excerpts and self.audit.redact:
                from safety_filter import pii

                await asyncio.to_thread(pii.warm_up)
        except Exception as exc:
            log.exception("safety-filter could not start")
            self._misconfigured = str(exc) or type(exc).__name__

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Load at start-up (or fail it with the message); close what this filter owns at shutdown."""
        first = await receive()
        if first["type"] == "lifespan.startup":
            if self._misconfigured is None:
                await self._start()
            if self._misconfigured is not None:
                await send({"type": "lifespan.startup.failed", "message": f"safety-filter: {self._misconfigured}"})
                return
        pending = [first]

        async def replaying() -> Message:
            return pending.pop() if pending else await receive()

        async def closing(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await asyncio.to_thread(self.close)
            await send(message)

        await self.app(scope, replaying, closing)

    def close(self) -> None:
        """Stop the engine's threads and close the audit log, if this filter created them."""
        for owned in self._owned:
            owned.close()
