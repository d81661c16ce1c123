"""The app `safety-filter serve` runs: the middleware in front of the upstream proxy or the demo
model, plus two routes of its own under `/safety-filter/` (health and Prometheus metrics)."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import make_asgi_app

from safety_filter.asgi.middleware import Receive, SafetyFilterMiddleware, Scope, Send
from safety_filter.engine import Engine
from safety_filter.policy import Policy


class ServerApp:
    def __init__(self, filtered: SafetyFilterMiddleware) -> None:
        self.filtered = filtered
        self.metrics = make_asgi_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/safety-filter/metrics":
            await self.metrics(scope, receive, send)
        elif path == "/safety-filter/health":
            policy = self.filtered.engine.policy
            body = json.dumps({"status": "ok", "policy": policy.label}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        else:
            await self.filtered(scope, receive, send)


def build_server_app(
    policy: Policy, upstream: str | None, *, timeout: float = 120.0, policy_path: str | Path | None = None
) -> ServerApp:
    """Filter `upstream` (or the demo model) under `policy`, reloading `policy_path` when it changes."""
    if upstream:
        from safety_filter.serve.proxy import UpstreamProxy

        inner = UpstreamProxy(upstream, timeout=timeout)
    else:
        from safety_filter.serve.demo import demo_app

        inner = demo_app()
    engine = Engine(policy, policy_path=policy_path)
    # In front of a model server, only inspected routes and the policy's passthrough_routes are forwarded.
    return ServerApp(SafetyFilterMiddleware(inner, policy, engine=engine, inspected_routes_only=bool(upstream)))
