"""The report's Markdown summary (and strict-JSON cleaning), from the results dict."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.tables import Table, all_tables, num


def clean(value: Any) -> Any:
    """NaN -> None, sets -> sorted lists, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(clean(v) for v in value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


Ref = tuple[str, str, str]  # (table, row, column)


def headline(results: dict[str, Any], tables: dict[str, Table] | None = None) -> list[dict[str, Any]]:
    """The headline lines, each {"text", "cells": [(table, row, column), ...]} quoting those cells."""
    tables = all_tables(results) if tables is None else tables
    lines: list[dict[str, Any]] = []

    def line(template: str, *refs: Ref) -> None:
        values = [tables[t].cell(r, c) for t, r, c in refs]
        lines.append({"text": template.format(*values), "cells": [list(ref) for ref in refs]})

    if "stages" in tables:
        parts = [
            n
            for n in ("classifier", "ncii", "rules", "tokenizer", "normalisation")
            if tables["stages"].cell(n, "ms per turn p50") != "not available"
        ]
        line(
            "- Cost per chat turn (1 KB prompt + 2 KB completion, first seen, p50): engine **{} ms**; "
            + ", ".join(f"{n} {{}} ms" for n in parts)
            + "; escalation rate {} on benign turns, {} on harmful texts",
            ("stages", "engine total", "ms per turn p50"),
            *[("stages", n, "ms per turn p50") for n in parts],
            ("escalation", "benign turn", "escalation rate"),
            ("escalation", "harmful texts", "escalation rate"),
        )
    if "overhead" in tables:
        names = [row[0] for row in tables["overhead"].rows]
        refs = [("overhead", n, c) for n in names for c in ("added p50 (ms)", "ratio p50", "answered with")]
        line(
            "- Added latency per chat turn (in-process, p50): "
            + ", ".join(f"{n} **{{}} ms** ({{}}, answered {{}})" for n in names),
            *refs,
        )
    if "http" in tables:
        c = "32" if "32" in results["http"]["targets"]["filter"] else tables["http"].rows[-1][0]
        cols = (
            "filter req/s",
            "filter 200 req/s",
            "answered 503",
            "filter answers",
            "direct req/s",
            "filter p50 (ms)",
            "direct p50 (ms)",
        )
        line(
            f"- Throughput at concurrency {c}: **{{}} req/s** through the filter ({{}} req/s answered 200; "
            "{} of {} answers were 503) vs {} req/s direct (p50 {} ms vs {} ms)",
            *[("http", c, col) for col in cols],
        )
    if "ttft" in tables:
        for row in tables["ttft"].rows:
            line(
                f"- TTFT added by the holdback ({row[0]}): **{{}} ms** p50 (p99 {{}} ms)",
                ("ttft", row[0], "added p50 (ms)"),
                ("ttft", row[0], "added p99 (ms)"),
            )
    if "block_lag" in tables:
        cols = ("share with lag 0", "blocked", "lag max", "lag median", "not blocked", "streams")
        line(
            "- Block lag: **0 characters in {}** of {} blocked streams, max {}, median {}; "
            "**{} of {} streams not blocked** (Azure's asynchronous filter: up to ~"
            f"{results['streaming']['azure_async_filter_lag_chars']:,} characters)",
            *[("block_lag", "all", col) for col in cols],
        )
    ours = results.get("quality", {}).get("systems", {}).get("safety-filter", {})
    if "quality" in tables and ours and not ours.get("skipped"):
        line(
            f"- Quality (any harmful category, {results['quality']['n']} held-out items): F1 **{{}}**, AUPRC {{}}, "
            "false-block rate on hard negatives {}",
            *[("quality", "safety-filter", col) for col in ("F1", "AUPRC", "false-block hard neg.")],
        )
    return lines


def summary(results: dict[str, Any]) -> str:
    tables = all_tables(results)
    out = [*_meta(results), "", "## Headline", "", *(h["text"] for h in headline(results, tables)), ""]
    sections = (
        ("latency", _latency),
        ("stages", _stages),
        ("overhead", _overhead),
        ("http", _http),
        ("streaming", _streaming),
        ("quality", _quality),
    )
    number = 0
    for key, write in sections:
        if results.get(key):
            number += 1
            out += write(number, results[key], tables)
    out.append(f"Raw figures: `results.json`. Plots: {', '.join(results.get('plots', [])) or 'none'}.")
    return "\n".join(out) + "\n"


def _meta(results: dict[str, Any]) -> list[str]:
    m, meta = results["machine"], results["meta"]
    load = results.get("load", {})
    la = load.get("loadavg_1min") or {}
    out = [
        "# safety-filter benchmark",
        "",
        f"- Machine: **{m['cores']} cores, {m['cpu_model']}**, {m.get('memory_gb', '?')} GB, Python {m['python']}, "
        f"{m['platform']}",
        f"- Load average (1 min) during the run: min {num(la.get('min'))}, median {num(la.get('median'))}, "
        f"max {num(la.get('max'))} (at start {num((load.get('start') or [None])[0])}); other work on the machine "
        "shares the cores",
        f"- Run: `{meta['size']}`, started {meta['started_utc']}, "
        f"**duration {meta['duration_seconds'] / 60:.1f} min**, "
        f"{meta['repeats']} repeats per figure ({meta.get('http_repeats', meta['repeats'])} per HTTP level, "
        f"{meta.get('overhead_repeats', meta['repeats'])} per overhead scenario; figures are medians over repeats; "
        "latencies give p50/p95/p99)",
    ]
    if meta.get("time_budgets_s"):
        budgets = ", ".join(f"{k} {v:.0f} s" for k, v in meta["time_budgets_s"].items())
        out.append(
            f"- Time budgets: {budgets}; work past a budget is cut (fewer samples or cells, marked as cut in the "
            f"tables and plots), never the whole section. Section times (s): {meta.get('section_seconds', {})}"
        )
    loaded = [f"{n} {num(d['load_seconds'], '{:.1f}')}" for n, d in results["detectors"].items() if d["available"]]
    out.append("- Detector load times (s): " + ", ".join(loaded))
    out.append(f"- Policy: `{meta['policy']}` ({meta['policy_version']}); engine: {results['engine']}")
    for name, d in results["detectors"].items():
        if not d["available"]:
            out.append(f"- **Detector `{name}` not available**: {d['error']}")
    return out


def _latency(n: int, lat: dict[str, Any], tables: dict[str, Table]) -> list[str]:
    out = [
        f"## {n}. Detector latency (per text, benign first-seen texts)",
        "",
        f"Token counts by {lat['tokens_counted_by']}. `call` is one `detect`/`check_sync` call of `batch` texts.",
        "",
        "| subject | tokens | batch | per text p50 (ms) | p95 | p99 | call p50 (ms) | repeats |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in lat["subjects"].items():
        if not s.get("available"):
            out.append(f"| {name} | n/a | n/a | not available: {s.get('error', '')[:80]} | | | | |")
            continue
        for c in s["cells"]:
            if "skipped" in c:
                out.append(f"| {name} | {c['tokens']} | {c['batch']} | cut: {c['skipped']} | | | | 0 |")
                continue
            repeats = f"{c['repeats']}" + (" (cut by the time budget)" if c.get("cut") else "")
            out.append(
                f"| {name} | {c['tokens']} (~{c['measured_tokens_mean']:.0f}) | {c['batch']} | "
                f"{num(c['per_text_p50_ms'], '{:.3f}')} | {num(c['per_text_p95_ms'], '{:.3f}')} | "
                f"{num(c['per_text_p99_ms'], '{:.3f}')} | {num(c['call_p50_ms'], '{:.3f}')} | {repeats} |"
            )
    return [*out, "", "![latency](latency.png)", ""]


def _stages(n: int, st: dict[str, Any], tables: dict[str, Table]) -> list[str]:
    out = [
        f"## {n}. Cost of each stage per chat turn ({st['turn']})",
        "",
        "Each piece called directly on both texts: normalisation is `model_view`, the tokenizer is the classifier's "
        "(on the model view), the detectors' `detect`, and the engine's `check_sync` of the prompt then of the "
        "completion (every detector plus the policy). The detectors normalise inside `detect`, so the stages overlap.",
        "",
        *tables["stages"].markdown(),
        "",
        "Escalation rate of the classifier's first stage (escalated / windows, deltas of its `stats()` counters "
        "around each measurement):",
        "",
        *tables["escalation"].markdown(),
        "",
    ]
    fp32 = st.get("fp32", {})
    if fp32.get("skipped"):
        out += [f"Plain fp32 transformers inference of the encoder: skipped ({fp32['skipped']}).", ""]
    elif fp32:
        out += [
            f"Plain fp32 transformers inference of the encoder on the same {fp32['windows']} windows of one turn: "
            f"**{num(fp32['torch_fp32_ms_per_turn'], '{:.1f}')} ms** against "
            f"{num(fp32['onnx_shipped_ms_per_turn'], '{:.1f}')} ms "
            f"for the shipped ONNX model (x{num(fp32['speed_up'], '{:.1f}')}; fp32 weights: "
            f"{fp32.get('fp32_weights', fp32.get('checkpoint', 'a checkpoint'))}; both in one padded batch).",
            "",
        ]
    return out


def _overhead(n: int, ov: dict[str, Any], tables: dict[str, Table]) -> list[str]:
    return [
        f"## {n}. Middleware overhead (in-process ASGI, JSON chat turn: 1 KB prompt, 2 KB completion)",
        "",
        *tables["overhead"].markdown(),
        "",
        "cold: every text first seen; warm: 3 earlier turns (9 KB of history) cached, new prompt and completion; "
        "cached: the same request again. The echo model answers in a fraction of a millisecond, so the ratio shows "
        "the filter's cost against an instant app; against a real model the added milliseconds are what counts.",
        "",
        "![overhead](overhead.png)",
        "",
    ]


def _http(n: int, http: dict[str, Any], tables: dict[str, Table]) -> list[str]:
    srv = http.get("server", {})
    return [
        f"## {n}. Over HTTP (uvicorn, 127.0.0.1, closed loop)",
        "",
        f"Filter: middleware + UpstreamProxy, uvicorn 1 worker (loop `{srv.get('uvicorn_loop')}`, http "
        f"`{srv.get('uvicorn_http')}`), engine {srv.get('engine')}; fake upstream in its own process; load generator "
        f"in a third. {http['request']}; time cap {http['time_cap_s']} s per run, requests per run "
        f"{http['requests_per_run']}. Answers are counted over all runs of a level, as the server sent them.",
        "",
        *tables["http"].markdown(),
        "",
        "A 503 is the fail-closed answer when detection takes longer than the policy's `detectors.timeout_seconds`: "
        "under overload the filter refuses rather than letting text through unchecked. Latencies count every answer.",
        "",
        "![http](http.png)",
        "",
    ]


def _cpu_twin(cpu: dict[str, Any] | None) -> list[str]:
    if not cpu or cpu.get("ratio") is None:
        return []
    refused = cpu.get("pairs_not_200") or 0
    skipped = f" ({refused} pairs left out: an answer was not a 200)" if refused else ""
    return [
        f"CPU a stream costs against its JSON twin ({cpu['pairs']} first-seen {cpu['completion_chars']:,}-character "
        f"completions each way, {cpu['event_chars']}-character events): the middleware adds "
        f"{cpu['stream_added_cpu_ms_p50']:.0f} ms of process CPU per stream and {cpu['json_added_cpu_ms_p50']:.0f} ms "
        f"per JSON body (p50): **{cpu['ratio']:.2f}x**{skipped}.",
        "",
    ]


def _streaming(n: int, st: dict[str, Any], tables: dict[str, Table]) -> list[str]:
    s, bl = st["settings"], st["block_lag"]
    cut = (
        f" (cut by the time budget: {bl['items']} of {bl['items_available']})"
        if bl["items"] < bl["items_available"]
        else ""
    )
    out = [
        f"## {n}. Streaming",
        "",
        f"Guard settings: check after {s['check_every_chars']} new chars at a sentence end (or after "
        f"{s.get('sentence_wait_chars', 0)} chars without one), holdback {s['holdback_chars']} chars, "
        f"context {s['context_chars']} chars. TTFT of a 240-character completion in 4-character events, unpaced and "
        "paced at 10 ms per event:",
        "",
        *tables["ttft"].markdown(),
        "",
        *_cpu_twin(st.get("stream_vs_json_cpu")),
        f"Block lag over {bl['items']} completions with a harmful part{cut} ({bl['items_source']}):",
        "",
        *tables["block_lag"].markdown(),
        "",
        f"Azure OpenAI's asynchronous filter mode may let about {st['azure_async_filter_lag_chars']:,} characters "
        "through before it cuts a stream. The stream guard never releases text before it was checked, so a harmful "
        "span that the detectors flag on the text held back never reaches the client (lag 0). A lag above 0 means "
        "the detectors flagged the stream only once more of the passage had arrived (counted from its first "
        "character). 'not blocked' streams are misses of the detectors (a quality matter), not lag.",
        "",
    ]
    worst: dict[str, dict[str, Any]] = {}
    for item in bl.get("nonzero") or []:
        if item["id"] not in worst or item["lag"] > worst[item["id"]]["lag"]:
            worst[item["id"]] = item
    if worst:
        listed = ", ".join(f"`{k}` {v['lag']} chars ({v['event_chars']}-char events)" for k, v in sorted(worst.items()))
        out += [f"Streams with a lag above 0 (worst event size each): {listed}.", ""]
    return [*out, "![streaming](streaming.png)", ""]


def _quality(n: int, q: dict[str, Any], tables: dict[str, Table]) -> list[str]:
    out = [f"## {n}. Quality against peers", ""]
    if q.get("skipped"):
        return [*out, f"Skipped: {q['skipped']}", ""]
    out += [
        f"Data: `{q['data']}` ({q['n']} items: {q['harmful']} harmful, {q['benign']} benign of which "
        f"{q['hard_negatives']} hard negatives; labels {q['label_counts']}). `any` = the item has a harmful label / "
        "the system flags it: the only column for one-score peers.",
        "",
        *tables["quality"].markdown(),
    ]
    cats = ["hate", "extremism", "non_consensual", "sexual"]
    out += [
        "",
        "Per category (systems that score categories):",
        "",
        "| system | " + " | ".join(f"{c} P / R / F1 / AUPRC" for c in cats) + " |",
        "|---|" + "---|" * len(cats),
    ]
    for name, s in q["systems"].items():
        if s.get("categories"):
            cells = []
            for c in cats:
                v = s["categories"].get(c)
                cells.append(
                    "n/a"
                    if v is None
                    else f"{num(v['precision'])} / {num(v['recall'])} / **{num(v['f1'])}** / {num(v['auprc'])}"
                )
            out.append(f"| {name} | " + " | ".join(cells) + " |")
    ran = [(name, s) for name, s in q["systems"].items() if "hard_negatives_by_kind" in s]
    if ran:
        kinds: dict[str, int] = {}
        for _, s in ran:
            for kind, v in s["hard_negatives_by_kind"].items():
                kinds[kind] = v["n"]
        top = sorted(kinds, key=lambda k: -kinds[k])[:20]
        out += [
            "",
            "False-block rate on hard negatives, by kind (most frequent kinds):",
            "",
            "| kind | n | " + " | ".join(name for name, _ in ran) + " |",
            "|---|---:|" + "---:|" * len(ran),
        ]
        for kind in top:
            cells = [num(s["hard_negatives_by_kind"].get(kind, {}).get("false_block_rate"), "{:.0%}") for _, s in ran]
            out.append(f"| {kind} | {kinds[kind]} | " + " | ".join(cells) + " |")
    out += ["", "Systems:", ""]
    for name, s in q["systems"].items():
        out.append(f"- **{name}**: {s['description']}")
    out += ["", "![quality](quality.png)", ""]
    return out
