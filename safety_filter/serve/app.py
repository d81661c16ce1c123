"""The app `safety-filter serve` runs: the middleware in front of the upstream proxy or the demo
model, plus two routes of its own under `/safety-filter/` (health and Prometheus metrics).

`run_server` serves it with uvicorn. With several workers each process builds its own app (its
own engine and model) through the `app_from_env` factory, from options passed in an environment
variable, because uvicorn starts workers from an import string, not from an app object.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from prometheus_client import make_asgi_app

from safety_filter import metrics
from safety_filter.asgi.middleware import ASGIApp, Receive, SafetyFilterMiddleware, Scope, Send
from safety_filter.engine import Engine
from safety_filter.policy import Policy

OPTIONS_ENV = "SAFETY_FILTER_SERVE_OPTIONS"


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """What `serve` filters and how: everything a worker process needs to build its app."""

    upstream: str | None = None
    policy: str | None = None  # a policy file (reloaded on change); None: the shipped default
    blocklists: tuple[str, ...] = ()  # extra rule lists (`--blocklist`), kept across reloads
    timeout: float = 120.0  # seconds to wait for the upstream


class ServerApp:
    def __init__(self, filtered: SafetyFilterMiddleware) -> None:
        self.filtered = filtered
        self.metrics = make_asgi_app(registry=metrics.current().registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/safety-filter/metrics":
            await self.metrics(scope, receive, send)
        elif path == "/safety-filter/health":
            await self._health(send)
        else:
            await self.filtered(scope, receive, send)

    async def _health(self, send: Send) -> None:
        """200 with the active policy and each detector's version once loaded; 503 before."""
        engine = self.filtered.engine
        if engine.loaded:
            status, body = 200, {"status": "ok", **engine.status()}
        else:
            status, body = 503, {"status": "loading"}
        payload = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def build_app(options: ServeOptions) -> ServerApp:
    """The filtered app for `options`; reads and validates the policy now, loads no model."""
    engine = Engine.from_policy_file(options.policy, extra_blocklists=options.blocklists)
    return _assemble(engine, options.upstream, options.timeout)


def build_server_app(
    policy: Policy, upstream: str | None, *, timeout: float = 120.0, policy_path: str | Path | None = None
) -> ServerApp:
    """Filter `upstream` (or the demo model) under `policy`, reloading `policy_path` when it changes."""
    return _assemble(Engine(policy, policy_path=policy_path), upstream, timeout)


def _assemble(engine: Engine, upstream: str | None, timeout: float) -> ServerApp:
    inner: ASGIApp
    if upstream:
        from safety_filter.serve.proxy import UpstreamProxy

        inner = UpstreamProxy(upstream, timeout=timeout)
    else:
        from safety_filter.serve.demo import demo_app

        inner = demo_app()
    # In front of a model server, only inspected routes and passthrough_routes are forwarded.
    filtered = SafetyFilterMiddleware(
        inner, engine=engine, inspected_routes_only=bool(upstream), close_on_shutdown=True
    )
    return ServerApp(filtered)


def app_from_env() -> ServerApp:
    """The uvicorn factory each worker process calls (`run_server` sets the options)."""
    raw = os.environ.get(OPTIONS_ENV)
    if raw is None:
        raise RuntimeError(f"{OPTIONS_ENV} is not set: start workers with safety_filter.serve.app.run_server")
    fields = json.loads(raw)
    return build_app(ServeOptions(**{**fields, "blocklists": tuple(fields.get("blocklists", ()))}))


def run_server(options: ServeOptions, *, host: str, port: int, workers: int = 1, log_level: str = "info") -> None:
    """Serve with uvicorn; the lifespan start-up loads the detectors (and fails the start on error)."""
    import uvicorn

    if workers == 1:
        uvicorn.run(build_app(options), host=host, port=port, log_level=log_level, lifespan="on")
        return
    absolute = dataclasses.replace(
        options,
        policy=str(Path(options.policy).resolve()) if options.policy else None,
        blocklists=tuple(str(Path(b).resolve()) for b in options.blocklists),
    )
    os.environ[OPTIONS_ENV] = json.dumps(dataclasses.asdict(absolute))
    uvicorn.run(f"{__name__}:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, lifespan="on")
