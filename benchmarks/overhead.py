"""2. Middleware overhead, in-process: the same ASGI echo model with and without the middleware.

A chat turn is a 1 KB user prompt answered by a 2 KB completion (JSON, not streamed), driven by
direct ASGI calls (no sockets), one at a time. Scenarios:

- `cold`: every text is first seen (new prompt, new completion): the full detection cost;
- `warm`: a conversation whose history (3 earlier turns: 1 KB user + 2 KB assistant each) was
  checked on an earlier turn and is cached; the new 1 KB prompt and its 2 KB completion are new;
- `cached`: the same request again (everything cached): parsing, hashing and rewriting only.

Requests with and without the middleware alternate, so drift in machine load hits both alike.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from tqdm import tqdm

from benchmarks.common import Sizes, added_ms, benign_chars, median_of_runs
from benchmarks.fake_app import EchoModel, asgi_call, chat_body
from safety_filter.asgi.middleware import SafetyFilterMiddleware
from safety_filter.audit import AuditLog
from safety_filter.engine import Engine

SCENARIOS = ("cold", "warm", "cached")


def steps(sizes: Sizes) -> int:
    return len(SCENARIOS) * (sizes.overhead_repeats or sizes.repeats)


def run(make_engine, sizes: Sizes, progress: tqdm, seed: int = 2) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return asyncio.run(_run(make_engine, sizes, progress, seed))


async def _run(make_engine, sizes: Sizes, progress: tqdm, seed: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    model = EchoModel(completion_chars=2048)
    serial = iter(range(10**9))
    out: dict[str, Any] = {"prompt_bytes": 1024, "completion_bytes": 2048, "scenarios": {}}
    history = []
    for turn in range(3):
        history.append({"role": "user", "content": benign_chars(rng, 1024, f"h{turn}")})
        history.append({"role": "assistant", "content": benign_chars(rng, 2048, f"a{turn}")})
    for scenario in SCENARIOS:
        runs = []
        for _ in range(sizes.overhead_repeats or sizes.repeats):
            progress.set_description(f"overhead {scenario}")
            engine: Engine = make_engine()  # a fresh cache per run
            filtered = SafetyFilterMiddleware(model, engine=engine, audit=AuditLog(None))
            fixed = benign_chars(rng, 1024, "fixed")

            def request(nonce: str, scenario: str = scenario, fixed: str = fixed) -> bytes:
                if scenario == "cold":
                    return chat_body([{"role": "user", "content": benign_chars(rng, 1024, nonce)}])
                if scenario == "warm":
                    return chat_body([*history, {"role": "user", "content": benign_chars(rng, 1024, nonce)}])
                return chat_body([{"role": "user", "content": fixed}])

            # warm-up: loads everything, and caches the history / the fixed request
            for app in (model, filtered):
                await asgi_call(app, request(f"w{next(serial)}"))
            base: list[float] = []
            with_mw: list[float] = []
            statuses: set[int] = set()
            stop = time.perf_counter() + sizes.budget("overhead") / (
                len(SCENARIOS) * (sizes.overhead_repeats or sizes.repeats)
            )
            for k in range(sizes.overhead_requests):
                if k >= 3 and time.perf_counter() > stop:
                    break  # the time budget: fewer requests, reported in `requests`
                body = request(f"n{next(serial)}")
                r0 = await asgi_call(model, body)
                body = request(f"n{next(serial)}")
                r1 = await asgi_call(filtered, body)
                base.append(r0.seconds)
                with_mw.append(r1.seconds)
                statuses.add(r1.status)
                actions = r1.headers.get(b"x-safety-filter-action", b"").decode()
            engine.close()
            figures = added_ms(base, with_mw)
            figures["requests"] = len(base)
            runs.append((figures, statuses, actions))
            progress.update()
        merged = median_of_runs([r[0] for r in runs])
        merged["statuses"] = sorted({s for r in runs for s in r[1]})
        merged["cut"] = any(r[0]["requests"] < sizes.overhead_requests for r in runs)  # by the time budget
        merged["last_action"] = runs[-1][2]
        out["scenarios"][scenario] = merged
    return out
