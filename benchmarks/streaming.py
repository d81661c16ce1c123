"""4. Streaming: time-to-first-token added by the holdback, and the block lag.

TTFT is the time from the request to the first body bytes that carry completion text, at the
client, in-process (ASGI calls), with and without the middleware, for a benign 240-character completion
streamed in 4-character events (about one token each):

- `unpaced`: the model sends as fast as it can, so the figure is the guard's own compute;
- `paced`: one event every `pace` seconds (10 ms: 100 tokens/s, a fast model), so the figure
  includes waiting for the characters the guard needs before its first release (a checked
  sentence end more than `holdback_chars` in: `expected_wait_ms` is that wait at this pace).

CPU of a stream vs its JSON twin: the process CPU time (all threads) the middleware adds to a
first-seen 2 KB benign completion streamed in 16-character events, over what it adds to the
same-sized completion answered as one JSON body; the ratio is summed over the pairs.

Block lag: over a set of completions with a harmful part starting at a known offset, streamed
in events of 1..64 characters, how many characters at or after that offset reached the client
before the stream was cut (0 means not a single character of it left). Streams the filter did not
block at all are counted apart (misses, a quality matter, not a lag). The offset is where the
harmful part begins, so the lag is counted conservatively (from its first character).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.common import Sizes, added_ms, benign_chars, median_of_runs
from benchmarks.fake_app import EchoModel, asgi_call, chat_body, stream_events
from safety_filter.asgi.middleware import SafetyFilterMiddleware
from safety_filter.asgi.stream import StreamGuard
from safety_filter.audit import AuditLog
from safety_filter.engine import Engine
from safety_filter.findings import Verdict
from safety_filter.policy import Policy, StreamingSettings

AZURE_ASYNC_LAG_CHARS = 1000  # Azure OpenAI "asynchronous filter" streaming mode, as documented
PACE_SECONDS = 0.01
PACED_COMPLETION_CHARS = 240  # enough for the first release (past the holdback), short to stream
CPU_TWIN_CHARS, CPU_TWIN_EVENT_CHARS = 2048, 16


def steps(sizes: Sizes) -> int:
    return 2 * sizes.repeats + 1 + len(sizes.block_event_sizes)


def run(
    make_engine,
    sizes: Sizes,
    progress: tqdm,
    block_items: list[dict[str, Any]],
    items_source: str,  # type: ignore[no-untyped-def]
    seed: int = 4,
) -> dict[str, Any]:
    return asyncio.run(_run(make_engine, sizes, progress, block_items, items_source, seed))


async def _ttft(
    model: EchoModel, filtered: Any, rng: random.Random, n: int, concurrent: int, tag: str
) -> dict[str, Any]:
    base: list[float] = []
    with_mw: list[float] = []
    counter = iter(range(10**9))
    for start in range(0, n, concurrent):
        k = min(concurrent, n - start)
        bodies0 = [
            chat_body([{"role": "user", "content": benign_chars(rng, 256, f"{tag}{next(counter)}")}], stream=True)
            for _ in range(k)
        ]
        bodies1 = [
            chat_body([{"role": "user", "content": benign_chars(rng, 256, f"{tag}{next(counter)}")}], stream=True)
            for _ in range(k)
        ]
        r0 = await asyncio.gather(*(asgi_call(model, b, stream=True) for b in bodies0))
        r1 = await asyncio.gather(*(asgi_call(filtered, b, stream=True) for b in bodies1))
        base.extend(r.first_content for r in r0 if r.first_content is not None)
        with_mw.extend(r.first_content for r in r1 if r.first_content is not None)
    out = added_ms(base, with_mw)
    out["streams"] = len(with_mw)
    return out


async def _run(
    make_engine, sizes: Sizes, progress: tqdm, items: list[dict[str, Any]], items_source: str, seed: int
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    started = time.perf_counter()
    engine = make_engine()
    settings = engine.policy.streaming
    out: dict[str, Any] = {
        "settings": settings.model_dump(),
        "azure_async_filter_lag_chars": AZURE_ASYNC_LAG_CHARS,
    }
    out["ttft"] = await _ttft_modes(make_engine, sizes, progress, rng, settings)
    progress.set_description("streaming: CPU of a stream vs its JSON twin")
    out["stream_vs_json_cpu"] = await _stream_vs_json_cpu(engine, sizes.stream_cpu_pairs, rng)
    progress.update()
    out["block_lag"] = await _block_lag(engine, sizes, progress, items, items_source, started)
    engine.close()
    return out


async def _ttft_modes(
    make_engine, sizes: Sizes, progress: tqdm, rng: random.Random, settings: StreamingSettings
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    out: dict[str, Any] = {}
    first_release = await _first_release_chars(settings, benign_chars(random.Random(1), PACED_COMPLETION_CHARS), 4)
    for mode, pace, chars, n, concurrent in (
        ("unpaced", 0.0, PACED_COMPLETION_CHARS, sizes.ttft_requests, 1),
        ("paced", PACE_SECONDS, PACED_COMPLETION_CHARS, sizes.ttft_paced_requests, 5),
    ):
        model = EchoModel(completion_chars=chars, piece=4, pace=pace)
        runs = []
        for r in range(sizes.repeats):
            progress.set_description(f"streaming ttft {mode}")
            run_engine = make_engine()
            filtered = SafetyFilterMiddleware(model, engine=run_engine, audit=AuditLog(None))
            await asgi_call(
                filtered, chat_body([{"role": "user", "content": "Ref warm. hello"}], stream=True), stream=True
            )
            runs.append(await _ttft(model, filtered, rng, n, concurrent, f"t{mode}{r}-"))
            run_engine.close()
            progress.update()
        merged = median_of_runs(runs)
        merged.update({"pace_s_per_event": pace, "event_chars": 4, "completion_chars": chars})
        if pace:
            merged["chars_per_second"] = 4 / pace
            merged["first_release_chars"] = first_release
            merged["expected_wait_ms"] = first_release / (4 / pace) * 1000
        out[mode] = merged
    return out


async def _first_release_chars(settings: StreamingSettings, text: str, piece: int) -> int:
    """How many characters of `text`, streamed `piece` at a time, the guard reads before it
    releases any of it (every check allowing)."""
    engine = Engine(Policy.default(), [])

    async def allow(texts: list[str]) -> list[Verdict]:
        return await engine.check(texts, "completion")

    guard, fed = StreamGuard(allow, settings), 0
    try:
        for event in stream_events(text, piece)[1:]:  # after the role event, which carries no text
            fed += len(json.loads(event[6:])["choices"][0]["delta"].get("content", ""))
            if await guard.feed(event):
                return fed
        return len(text)
    finally:
        engine.close()


async def _stream_vs_json_cpu(engine: Any, pairs: int, rng: random.Random) -> dict[str, Any]:
    """Process CPU seconds added by the middleware to a streamed completion and to its JSON twin
    (each completion first seen: its own nonce and text), and their ratio. A pair counts only
    when every answer was a 200 (a refused or blocked request costs less and would skew it)."""
    model = EchoModel(completion_chars=CPU_TWIN_CHARS, piece=CPU_TWIN_EVENT_CHARS)
    filtered = SafetyFilterMiddleware(model, engine=engine, audit=AuditLog(None))
    added: dict[bool, list[float]] = {True: [], False: []}
    not_200 = 0
    for i in range(pairs):
        pair: dict[bool, float] = {}
        for stream in (False, True):
            cpu, ok = {}, True
            for app, tag in ((model, "base"), (filtered, "mw")):
                nonce = f"cpu{tag}{int(stream)}x{i}"
                model.replies[nonce] = benign_chars(rng, CPU_TWIN_CHARS, nonce)
                model.settings[nonce] = (CPU_TWIN_EVENT_CHARS, 0.0)
                body = chat_body([{"role": "user", "content": f"Ref {nonce}. continue the story"}], stream=stream)
                before = time.process_time()
                result = await asgi_call(app, body, stream=stream)
                cpu[tag] = time.process_time() - before
                ok = ok and result.status == 200
            if not ok:
                not_200 += 1
                break
            pair[stream] = max(0.0, cpu["mw"] - cpu["base"])
        if len(pair) == 2:
            for stream, seconds in pair.items():
                added[stream].append(seconds)
    json_cpu, stream_cpu = sum(added[False]), sum(added[True])
    counted = len(added[True])
    return {
        "pairs": counted, "pairs_not_200": not_200, "completion_chars": CPU_TWIN_CHARS,
        "event_chars": CPU_TWIN_EVENT_CHARS,
        "json_added_cpu_ms_p50": statistics.median(added[False]) * 1000 if counted else None,
        "stream_added_cpu_ms_p50": statistics.median(added[True]) * 1000 if counted else None,
        "ratio": stream_cpu / json_cpu if json_cpu > 0 else None,
    }


async def _block_lag(
    engine: Any, sizes: Sizes, progress: tqdm, items: list[dict[str, Any]], items_source: str, started: float
) -> dict[str, Any]:
    model = EchoModel(completion_chars=256)
    filtered = SafetyFilterMiddleware(model, engine=engine, audit=AuditLog(None))
    per_item: list[dict[str, Any]] = []
    outcome: dict[int, dict[str, list[Any]]] = {
        piece: {"lags": [], "missed": [], "other": []} for piece in sizes.block_event_sizes
    }
    deadline = time.perf_counter() + max(0.0, sizes.budget("streaming") - (time.perf_counter() - started))
    done_items = 0
    for i, item in enumerate(items):
        if done_items and time.perf_counter() > deadline:
            break  # the time budget: fewer streams, reported in `streams`
        progress.set_description(f"streaming block lag, stream {i + 1}/{len(items)}")
        for piece in sizes.block_event_sizes:
            nonce = f"blk{piece}x{i}"
            model.replies[nonce] = item["text"]
            model.settings[nonce] = (piece, 0.0)
            r = await asgi_call(
                filtered,
                chat_body([{"role": "user", "content": f"Ref {nonce}. continue the story"}], stream=True),
                stream=True,
            )
            emitted = r.content
            if not item["text"].startswith(emitted):
                outcome[piece]["other"].append(i)  # the client got text that is not a prefix of the completion
            if r.finish_reason == "content_filter":
                lag = max(0, len(emitted) - int(item["offending_start"]))
                outcome[piece]["lags"].append(lag)
                per_item.append(
                    {
                        "id": item.get("id", str(i)),
                        "event_chars": piece,
                        "emitted": len(emitted),
                        "offending_start": item["offending_start"],
                        "lag": lag,
                    }
                )
            else:
                outcome[piece]["missed"].append(item.get("id", str(i)))
        done_items += 1
    progress.update(len(sizes.block_event_sizes))
    lag_by_size: dict[str, Any] = {}
    all_lags: list[int] = []
    for piece, o in outcome.items():
        lags = o["lags"]
        all_lags.extend(lags)
        lag_by_size[str(piece)] = {
            "streams": done_items,
            "blocked": len(lags),
            "not_blocked": len(o["missed"]),
            "not_a_prefix": len(o["other"]),
            "lag_max": max(lags) if lags else None,
            "lag_median": statistics.median(lags) if lags else None,
            "lag_mean": statistics.fmean(lags) if lags else None,
            "lag_zero_share": sum(1 for x in lags if x == 0) / len(lags) if lags else None,
            "not_blocked_ids": o["missed"],
        }
    return {
        "items": done_items,
        "items_available": len(items),
        "items_source": items_source,
        "by_event_chars": lag_by_size,
        "overall": {
            "blocked_streams": len(all_lags),
            "lag_max": max(all_lags) if all_lags else None,
            "lag_median": statistics.median(all_lags) if all_lags else None,
            "lag_zero_share": sum(1 for x in all_lags if x == 0) / len(all_lags) if all_lags else None,
        },
        "nonzero": [p for p in per_item if p["lag"] > 0][:50],
    }


# -- the blocked-stream set ------------------------------------------------------------------


def load_block_items(
    path: Path | None, limit: int, rng: random.Random, rules_detector: Any = None
) -> tuple[list[dict[str, Any]], str]:
    """Rows {"id", "text", "offending_start", ...} from `path` (JSON lines), else made from the lists."""
    if path is not None and path.is_file():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows = [r for r in rows if isinstance(r.get("text"), str) and isinstance(r.get("offending_start"), int)]
        if len(rows) > limit:
            rows = rng.sample(rows, limit)
        return rows, str(path)
    return planted_items(
        rules_detector, limit, rng
    ), "planted: a blocking list term inside benign text (no data file found)"


def planted_items(rules_detector: Any, limit: int, rng: random.Random) -> list[dict[str, Any]]:
    """Streams made from the shipped lists: benign text, then a term of a blocking list, then more."""
    terms: list[tuple[str, str]] = []
    if rules_detector is not None:
        for rl in rules_detector.compiled.lists:
            if rl.action not in (None, "block"):
                continue
            for entry in rl.entries:
                if entry.kind == "term" and entry.match == "word" and len(entry.term) >= 4:
                    terms.append((rl.category, entry.term))
    items = []
    for i, (category, term) in enumerate(rng.sample(terms, min(limit, len(terms)))):
        prefix = benign_chars(rng, rng.randint(60, 600)) + " "
        suffix = " " + benign_chars(rng, rng.randint(40, 200))
        items.append(
            {
                "id": f"planted-{i}",
                "category": category,
                "text": prefix + term + suffix,
                "offending_start": len(prefix),
                "offending_end": len(prefix) + len(term),
                "source": "planted list term",
            }
        )
    return items
