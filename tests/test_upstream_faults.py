"""Upstream and client faults through the real proxy under uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.audit import AuditLog
from safety_filter.serve.proxy import UpstreamProxy

from .helpers import FakeDetector, RunningServer, chat_request, make_policy

pytestmark = pytest.mark.slow  # real servers or real models


def proxy_to(url: str, timeout: float = 5.0, **policy: Any) -> SafetyFilterMiddleware:
    engine = Engine(make_policy(**policy), [FakeDetector()])
    return SafetyFilterMiddleware(UpstreamProxy(url, timeout=timeout), engine=engine, audit=AuditLog(None))


def delta(text: str) -> bytes:
    chunk = {"id": "u", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


class Upstream:
    """A misbehaving model server: each route fails in its own way."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.produced = 0
        self.app = Starlette(routes=[Route("/{kind}/v1/chat/completions", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind == "slow":
            await asyncio.sleep(3)
        if kind == "error500":
            return Response(b'{"error": {"message": "model crashed"}}', status_code=500, media_type="application/json")
        if kind == "notjson":
            return Response(b"<html>zzhate</html>", media_type="application/json")
        if kind == "gzip":
            body = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi there"}}]}'
            return Response(gzip.compress(body), media_type="application/json", headers={"content-encoding": "gzip"})
        if kind == "badsse":
            async def garbage():  # type: ignore[no-untyped-def]
                yield b"data: {broken json zzhate\n\n"
                yield b"data: [DONE]\n\n"
            return StreamingResponse(garbage(), media_type="text/event-stream")
        if kind == "flood":
            async def flood():  # type: ignore[no-untyped-def]
                event = delta("words and more words, " * 2000)  # ~45 KB per event
                for _ in range(4000):  # ~180 MB if nobody pushed back
                    self.produced += len(event)
                    yield event
            return StreamingResponse(flood(), media_type="text/event-stream")
        if kind == "forever":
            async def forever():  # type: ignore[no-untyped-def]
                try:
                    while True:
                        yield delta("still talking, ")
                        await asyncio.sleep(0.01)
                finally:
                    self.cancelled.set()
            return StreamingResponse(forever(), media_type="text/event-stream")
        return Response(b"{}", media_type="application/json")


@pytest.fixture(scope="module")
def upstream():  # type: ignore[no-untyped-def]
    fake = Upstream()
    with RunningServer(fake.app) as server:
        yield fake, server.url


def test_upstream_timeout_gives_504(upstream) -> None:  # type: ignore[no-untyped-def]
    _, url = upstream
    with RunningServer(proxy_to(f"{url}/slow", timeout=0.5)) as proxy:
        response = httpx.post(f"{proxy.url}/v1/chat/completions", json=chat_request("hi"), timeout=10)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"


def test_upstream_5xx_is_relayed_as_is(upstream) -> None:  # type: ignore[no-untyped-def]
    _, url = upstream
    with RunningServer(proxy_to(f"{url}/error500")) as proxy:
        response = httpx.post(f"{proxy.url}/v1/chat/completions", json=chat_request("hi"))
    assert response.status_code == 500 and response.json()["error"]["message"] == "model crashed"


def test_upstream_invalid_json_is_still_inspected(upstream) -> None:  # type: ignore[no-untyped-def]
    _, url = upstream
    with RunningServer(proxy_to(f"{url}/notjson")) as proxy:
        response = httpx.post(f"{proxy.url}/v1/chat/completions", json=chat_request("hi"))
    assert b"zzhate" not in response.content
    assert response.headers["x-safety-filter-action"] == "block"


def test_upstream_gzip_json_is_inspected_and_relayed_compressed(upstream) -> None:  # type: ignore[no-untyped-def]
    _, url = upstream
    with RunningServer(proxy_to(f"{url}/gzip")) as proxy:
        response = httpx.post(f"{proxy.url}/v1/chat/completions", json=chat_request("hi"))
    assert response.headers["content-encoding"] == "gzip"
    assert response.json()["choices"][0]["message"]["content"] == "hi there"


def test_malformed_sse_is_inspected_as_text(upstream) -> None:  # type: ignore[no-untyped-def]
    _, url = upstream
    with RunningServer(proxy_to(f"{url}/badsse")) as proxy:
        response = httpx.post(f"{proxy.url}/v1/chat/completions", json=chat_request("hi", stream=True))
    assert b"zzhate" not in response.content
    assert response.content.endswith(b"data: [DONE]\n\n")


def test_upstream_reset_mid_stream_ends_cleanly_with_an_error_event() -> None:
    """A raw upstream that sends half a stream and drops the connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve_once() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        event = delta("partial answer that was checked. " * 4)
        conn.sendall(head + f"{len(event):x}\r\n".encode() + event + b"\r\n")
        time.sleep(0.2)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()  # RST, no terminating chunk
        listener.close()

    threading.Thread(target=serve_once, daemon=True).start()
    with RunningServer(proxy_to(f"http://127.0.0.1:{port}")) as proxy:
        response = httpx.post(f"{proxy.url}/v1/chat/completions", json=chat_request("hi", stream=True), timeout=10)
    text = response.text
    assert "upstream_stream_error" in text
    assert "partial answer that was checked" in text  # what was checked is delivered, then the error


def _content_length(head: bytes) -> int:
    for line in head.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_connection_the_upstream_closes_when_idle_is_never_reused() -> None:
    """A raw upstream that resets any request arriving after 1.5 s idle on a kept-alive connection,
    as a server whose idle timer fires while the request is in flight: the proxy opens a new one."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    body = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi there"}}]}'
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)

    def read_request(conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _content_length(data):
            chunk = conn.recv(65536)
            if not chunk:
                return b""
            data += chunk
        return data

    def serve(conn: socket.socket) -> None:
        idle_since = None
        with conn:
            while read_request(conn):
                if idle_since is not None and time.monotonic() - idle_since > 1.5:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    return  # RST, no answer
                conn.sendall(answer)
                idle_since = time.monotonic()

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        with RunningServer(proxy_to(f"http://127.0.0.1:{port}")) as proxy:
            url = f"{proxy.url}/v1/chat/completions"
            with httpx.Client(timeout=10) as client:
                first = client.post(url, json=chat_request("hi"))
                time.sleep(1.7)
                second = client.post(url, json=chat_request("hi"))
    finally:
        listener.close()
    assert first.status_code == 200 and second.status_code == 200, second.text
    assert second.content == body


def test_client_disconnect_mid_stream_cancels_the_upstream(upstream) -> None:  # type: ignore[no-untyped-def]
    fake, url = upstream
    fake.cancelled.clear()
    with RunningServer(proxy_to(f"{url}/forever")) as proxy:
        with httpx.stream(
            "POST", f"{proxy.url}/v1/chat/completions", json=chat_request("hi", stream=True), timeout=10
        ) as response:
            received = 0
            for chunk in response.iter_raw():
                received += len(chunk)
                if received > 2000:
                    break
        assert fake.cancelled.wait(timeout=15), "the upstream kept streaming after the client left"


def test_a_slow_client_does_not_make_the_proxy_buffer_unboundedly(upstream) -> None:  # type: ignore[no-untyped-def]
    """A client that stops reading: backpressure must reach the upstream instead of memory."""
    fake, url = upstream
    fake.produced = 0
    with RunningServer(proxy_to(f"{url}/flood", timeout=30)) as proxy:
        client = socket.create_connection(("127.0.0.1", proxy.port))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        body = json.dumps(chat_request("hi", stream=True)).encode()
        client.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode() + body
        )
        client.recv(1024)  # the stream has started...
        time.sleep(3)  # ...and then the client stops reading
        stalled_at = fake.produced
        time.sleep(1)
        assert fake.produced - stalled_at < 1_000_000, "the upstream kept producing for a client that was not reading"
        assert stalled_at < 40_000_000, f"{stalled_at} bytes were produced for a client that read 1 KB"
        client.close()
