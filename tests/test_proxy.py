"""The reverse proxy under real uvicorn servers on 127.0.0.1: upstream relaying and failures."""

from __future__ import annotations

import json

import httpx
import pytest

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.audit import AuditLog
from safety_filter.serve.proxy import UpstreamProxy, forwardable

from .helpers import ChatApp, FakeDetector, RunningServer, chat_request, free_port, make_policy

pytestmark = pytest.mark.slow  # real servers or real models


def filtering_proxy(upstream: str, **policy: object) -> SafetyFilterMiddleware:
    engine = Engine(make_policy(**policy), [FakeDetector()])
    return SafetyFilterMiddleware(UpstreamProxy(upstream, timeout=5), engine=engine, audit=AuditLog(None))


@pytest.fixture(scope="module")
def upstream():  # type: ignore[no-untyped-def]
    app = ChatApp("A friendly streamed answer that is long enough to be checked in several windows. " * 3, piece=4)
    with RunningServer(app) as server:
        yield app, server


def test_allowed_answers_relay_byte_for_byte(upstream) -> None:  # type: ignore[no-untyped-def]
    _, server = upstream
    with RunningServer(filtering_proxy(server.url)) as proxy:
        for stream in (False, True):
            direct = httpx.post(f"{server.url}/v1/chat/completions", json=chat_request("hi", stream=stream))
            through = httpx.post(f"{proxy.url}/v1/chat/completions", json=chat_request("hi", stream=stream))
            assert through.status_code == 200
            assert through.content == direct.content
            assert through.headers["x-safety-filter-action"] == "allow"


def test_blocked_prompt_is_not_forwarded(upstream) -> None:  # type: ignore[no-untyped-def]
    app, server = upstream
    before = app.calls
    with RunningServer(filtering_proxy(server.url)) as proxy:
        response = httpx.post(f"{proxy.url}/v1/chat/completions", json=chat_request("zzhate"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_filter"
    assert app.calls == before


def test_proxy_ignores_host_header_and_absolute_urls(upstream) -> None:  # type: ignore[no-untyped-def]
    app, server = upstream
    before = app.calls
    with RunningServer(filtering_proxy(server.url)) as proxy:
        response = httpx.post(
            f"{proxy.url}/v1/chat/completions", json=chat_request("hi"), headers={"host": "evil.example:80"}
        )
    assert response.status_code == 200 and app.calls == before + 1


def test_upstream_down_gives_502_json() -> None:
    with RunningServer(filtering_proxy(f"http://127.0.0.1:{free_port()}")) as proxy:
        response = httpx.post(f"{proxy.url}/v1/chat/completions", json=chat_request("hi"))
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unreachable"


def test_hop_by_hop_headers_are_dropped() -> None:
    headers = [
        (b"connection", b"keep-alive, x-private"),
        (b"x-private", b"1"),
        (b"keep-alive", b"5"),
        (b"authorization", b"Bearer k"),
    ]
    assert forwardable(headers) == [(b"authorization", b"Bearer k")]


def test_streamed_block_through_the_proxy_ends_cleanly() -> None:
    app = ChatApp("Opening words that are harmless, followed by zzhate and then the rest of it.", piece=2)
    with RunningServer(app) as server, RunningServer(filtering_proxy(server.url)) as proxy:
        response = httpx.post(f"{proxy.url}/v1/chat/completions", json=chat_request("hi", stream=True))
    events = [e[6:] for e in response.text.split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "content_filter"
    assert "zzh" not in response.text.replace(events[-2], "")
