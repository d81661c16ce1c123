"""Load and soak on loopback: hundreds of concurrent streams through the proxy, no error, no
mixed-up response, flat memory, and a rule list hot-reloaded in the middle of it."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.audit import AuditLog
from safety_filter.serve.proxy import UpstreamProxy

from .helpers import RunningServer

pytestmark = pytest.mark.slow  # real servers or real models

STREAMS = 300
ROUNDS = 3
MARKER = "quorvendish"


async def echo(request: Request) -> StreamingResponse:
    """Streams the user's words back in small pieces, so each response is tied to its request."""
    body = await request.json()
    text = body["messages"][-1]["content"] + " " + "and some filler words to stream. " * 4

    async def events():  # type: ignore[no-untyped-def]
        for start in range(0, len(text), 6):
            chunk = {
                "id": "e",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": text[start : start + 6]}}],
            }
            yield f"data: {json.dumps(chunk)}\n\n".encode()
            await asyncio.sleep(0)
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def streamed_text(raw: str) -> str:
    out = []
    for event in raw.split("\n\n"):
        if event.startswith("data: {"):
            for choice in json.loads(event[6:]).get("choices", []):
                out.append(choice.get("delta", {}).get("content") or "")
    return "".join(out)


async def one(http: httpx.AsyncClient, url: str, i: int, marker: str = "") -> tuple[int, str, str]:
    """Request i echoes "request-{i} word{i}x"; a marker word, if given, follows."""
    content = f"request-{i} word{i}x {marker}".rstrip()
    response = await http.post(url, json={"messages": [{"role": "user", "content": content}], "stream": True})
    return response.status_code, response.headers.get("x-safety-filter-action", ""), response.text


def test_hundreds_of_concurrent_streams_with_a_hot_reload(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    campaign = lists / "campaign.txt"
    campaign.write_text("# terms of the day\nzorblaxian\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "categories: {hate: {}, extremism: {}, non_consensual: {}, sexual: {}}\n"
        f"detectors: {{rules: {{blocklists: ['{lists}']}}, classifier: {{enabled: false}}, ncii: {{enabled: false}}}}\n"
        "reload_interval_seconds: 0.05\n"
    )
    upstream_app = Starlette(routes=[Route("/v1/chat/completions", echo, methods=["POST"])])
    with RunningServer(upstream_app) as upstream:
        engine = Engine.from_policy_file(policy)
        proxy_app = SafetyFilterMiddleware(UpstreamProxy(upstream.url, timeout=60), engine=engine, audit=AuditLog(None))
        with RunningServer(proxy_app) as proxy:
            url = f"{proxy.url}/v1/chat/completions"

            async def round_of(n: int, offset: int) -> list[tuple[int, str, str]]:
                limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
                async with httpx.AsyncClient(limits=limits, timeout=60) as http:
                    return await asyncio.wait_for(asyncio.gather(*(one(http, url, offset + i) for i in range(n))), 180)

            asyncio.run(round_of(STREAMS, 0))  # warm-up: imports, pools, caches
            gc.collect()
            before = rss_kib()
            for r in range(ROUNDS):
                results = asyncio.run(round_of(STREAMS, (r + 1) * STREAMS))
                for i, (status, action, raw) in enumerate(results):
                    n = (r + 1) * STREAMS + i
                    assert status == 200 and action == "allow", (status, raw[:200])
                    text = streamed_text(raw)
                    assert text.startswith(f"request-{n} word{n}x "), "a response was mixed up with another"
                    assert raw.endswith("data: [DONE]\n\n")
            gc.collect()
            after = rss_kib()

            async def reload_under_load() -> list[tuple[int, str, str]]:
                limits = httpx.Limits(max_connections=STREAMS, max_keepalive_connections=STREAMS)
                async with httpx.AsyncClient(limits=limits, timeout=60) as http:
                    # only the last request carries the new term, a word of letters, so no other id
                    # can fold onto it (the normaliser reads digits such as 6 and 9 as leetspeak)
                    tasks = [
                        asyncio.create_task(one(http, url, 10_000 + i, MARKER if i == STREAMS - 1 else ""))
                        for i in range(STREAMS)
                    ]
                    await asyncio.sleep(0.05)
                    campaign.write_text(f"# terms of the day\nzorblaxian\n{MARKER}\n")
                    done = await asyncio.wait_for(asyncio.gather(*tasks), 180)
                # the polls get fresh connections: one of the 300 pooled ones may be idle past
                # uvicorn's keep-alive timeout (5 s) and closed by the server as it is reused
                async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0), timeout=60) as poll:
                    deadline = asyncio.get_running_loop().time() + 30
                    while asyncio.get_running_loop().time() < deadline:  # the new list takes effect
                        status, _, _ = await one(poll, url, 10_299, MARKER)
                        if status == 400:
                            break
                        await asyncio.sleep(0.1)
                    return [*done, await one(poll, url, 10_299, MARKER)]

            results = asyncio.run(reload_under_load())
            assert all(status in (200, 400) for status, _, _ in results)  # nothing failed mid-reload
            # request 10299 carries the new term: if the list swapped in between its prompt and its
            # completion check, its stream is cut (blocked) before any of it left; that is correct.
            # Every other request must pass whole: none of them carries the term.
            others = results[: STREAMS - 1]
            assert all(s == 200 and '"content_filter"' not in raw for s, _, raw in others)
            assert all(streamed_text(raw).startswith(f"request-{10_000 + i} ") for i, (_, _, raw) in enumerate(others))
            assert results[-1][0] == 400, "the hot-reloaded list never took effect"
            blocked_body = json.loads(results[-1][2])
            assert blocked_body["error"]["code"] == "content_filter"
    growth_mib = (after - before) / 1024
    print(
        f"soak: {ROUNDS}x{STREAMS} concurrent streams; RSS before {before / 1024:.1f} MiB, after {after / 1024:.1f} MiB"
    )
    assert growth_mib < 64, f"memory grew by {growth_mib:.1f} MiB over {ROUNDS} rounds"
