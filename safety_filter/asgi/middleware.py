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
from pathlib import Path

from safety_filter.api import adapter_for, unsupported_route
from safety_filter.api.openai import error_body
from safety_filter.asgi.answers import answer, has_body
from safety_filter.asgi.canonical import AmbiguousRequest, apply, canonical_target
from safety_filter.asgi.exchange import Exchange
from safety_filter.asgi.types import ASGIApp, Message, Receive, Scope, Send
from safety_filter.audit import AuditLog
from safety_filter.engine import Engine
from safety_filter.findings import Action
from safety_filter.policy import Policy

__all__ = ["ASGIApp", "Message", "Receive", "SafetyFilterMiddleware", "Scope", "Send"]


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
            await answer(send, 400, error_body(400, f"safety-filter: {exc}", "ambiguous_request"), Action.BLOCK)
            return
        apply(scope, target)
        policy = self.engine.policy
        adapter = adapter_for(target.path, policy.routes)
        if adapter is not None and target.method == "POST":
            await Exchange(self, policy, adapter, scope, receive, send).run()
        elif adapter is not None and not (target.method in ("OPTIONS", "HEAD") and not has_body(scope)):
            body = error_body(405, f"safety-filter: {target.method} is not allowed on {target.path}: only POST is inspected", "method_not_allowed")
            await answer(send, 405, body, Action.BLOCK, [(b"allow", b"POST, OPTIONS")])
        elif unsupported_route(target.path) and target.method != "OPTIONS":
            message = f"safety-filter cannot inspect {target.path} yet, so it is refused rather than passed unread"
            await answer(send, 501, error_body(501, message, "route_not_inspected"), Action.BLOCK)
        elif self.inspected_routes_only and not policy.passes_through(target.method, target.path):
            message = f"{target.method} {target.path} is neither inspected nor in the policy's passthrough_routes"
            await answer(send, 404, error_body(404, message, "route_not_forwarded"), Action.BLOCK)
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
