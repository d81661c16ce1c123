"""A streaming reverse proxy to ONE OpenAI-compatible upstream, as an ASGI app.

`safety-filter serve --upstream URL` wraps it in the middleware. It only ever talks to the
configured upstream: the target is the upstream base URL plus the request path, never taken from
the Host header or an absolute request URL, so it cannot be used as an open proxy. Upstream bytes
are relayed as they come (`aiter_raw`: compressed bodies stay compressed, so what the middleware
allows is byte for byte what the upstream sent).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any

import httpx

from safety_filter.api.openai import error_body
from safety_filter.asgi.types import Message, Receive, Scope, Send

# RFC 9110 section 7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def forwardable(
    headers: list[tuple[bytes, bytes]], *, drop: frozenset[bytes] = frozenset()
) -> list[tuple[bytes, bytes]]:
    """Headers minus hop-by-hop ones (including those the Connection header names) and `drop`."""
    named = {
        token.strip().lower() for key, value in headers if key.lower() == b"connection" for token in value.split(b",")
    }
    skip = HOP_BY_HOP | named | drop
    return [(k, v) for k, v in headers if k.lower() not in skip]


class UpstreamProxy:
    """Relays every HTTP request to `upstream` (e.g. `http://127.0.0.1:8080`).

    Idle pooled connections are dropped after `keepalive_expiry` seconds, sooner than model
    servers close theirs (uvicorn and llama.cpp after 5 s, gunicorn after 2 s): a request sent
    on a connection the upstream is closing at that instant fails with a reset, and a POST
    cannot be retried safely.
    """

    def __init__(
        self, upstream: str, *, timeout: float = 120.0, connect_timeout: float = 5.0, keepalive_expiry: float = 1.0
    ) -> None:
        self.upstream = httpx.URL(upstream.rstrip("/"))
        if self.upstream.scheme not in ("http", "https") or not self.upstream.host:
            raise ValueError(f"upstream must be an http(s) URL with a host, got {upstream!r}")
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._keepalive_expiry = keepalive_expiry
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(
                max_connections=512, max_keepalive_connections=64, keepalive_expiry=self._keepalive_expiry
            )
            self._client = httpx.AsyncClient(timeout=self._timeout, limits=limits, trust_env=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_all(receive)
        if body is None:  # the client left before sending its request
            return
        path = scope.get("raw_path") or scope["path"].encode()
        if not path.startswith(b"/"):  # the middleware refuses these first; never build a URL from one
            await _error(send, 400, "the request target must be a path starting with '/'", "invalid_request")
            return
        url = self.upstream.copy_with(
            raw_path=self.upstream.raw_path.rstrip(b"/")
            + path.split(b"?")[0]
            + (b"?" + scope["query_string"] if scope.get("query_string") else b"")
        )
        headers = forwardable(list(scope.get("headers", [])), drop=frozenset({b"host", b"content-length"}))
        request = self.client.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            await _error(send, 504, "the upstream model server did not answer in time", "upstream_timeout")
            return
        except httpx.HTTPError as exc:
            await _error(
                send, 502, f"the upstream model server is unreachable: {type(exc).__name__}", "upstream_unreachable"
            )
            return
        try:
            await _until_disconnect(self._relay(response, send), receive)
        finally:
            await response.aclose()

    async def _relay(self, response: httpx.Response, send: Send) -> None:
        # The server in front (uvicorn) writes its own Date and Server headers: one of each.
        headers = forwardable(list(response.headers.raw), drop=frozenset({b"date", b"server"}))
        streaming = response.headers.get("content-type", "").startswith("text/event-stream")
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        try:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError as exc:
            if not streaming:
                raise  # the middleware answers a truncated JSON body with the fail mode
            event = {
                "error": error_body(
                    502, f"the upstream stream broke off: {type(exc).__name__}", "upstream_stream_error"
                )["error"]
            }
            await send(
                {"type": "http.response.body", "body": f"data: {json.dumps(event)}\n\n".encode(), "more_body": True}
            )
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _until_disconnect(relay: Coroutine[Any, Any, None], receive: Receive) -> None:
    """Run `relay`, cancelling it if the client goes away: the upstream call is then closed."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    relaying = asyncio.ensure_future(relay)
    watching = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({relaying, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (relaying, watching):
            task.cancel()
        await asyncio.gather(relaying, watching, return_exceptions=True)
    if relaying.done() and not relaying.cancelled() and relaying.exception() is not None:
        raise relaying.exception()  # type: ignore[misc]


async def _read_all(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _error(send: Send, status: int, message: str, code: str) -> None:
    payload = json.dumps(error_body(status, message, code, error_type="upstream_error")).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": payload, "more_body": False})
