"""The report's Markdown summary (and strict-JSON cleaning), from the results dict."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks.common import machine_label


def _num(x: Any, fmt: str = "{:.2f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return fmt.format(x)


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

def headline(results: dict[str, Any]) -> list[str]:
    lines = []
    ov = results.get("overhead", {}).get("scenarios", {})
    if ov:
        lines.append(
            "- Added latency per chat turn (1 KB prompt + 2 KB completion, in-process, p50): "
            + ", ".join(
                f"{n} **{_num(s['added_p50_ms'], '{:.1f}')} ms** (x{_num(s['ratio_p50'], '{:.1f}')})"
                for n, s in ov.items()
            )
        )
    http = results.get("http", {})
    if http.get("targets"):
        c = "32" if "32" in http["targets"]["filter"] else list(http["targets"]["filter"])[-1]
        f, d = http["targets"]["filter"][c], http["targets"]["direct"][c]
        lines.append(
            f"- Throughput at concurrency {c}: **{_num(f['throughput_rps'], '{:.1f}')} req/s** through the filter "
            f"({_num(f.get('ok_throughput_rps'), '{:.1f}')} req/s answered 200, the rest fail-closed 503) vs "
            f"{_num(d['throughput_rps'], '{:.0f}')} req/s direct (p50 {_num(f['p50_ms'], '{:.0f}')} ms vs {_num(d['p50_ms'], '{:.1f}')} ms)"
        )
    st = results.get("streaming")
    if st:
        for mode, t in st["ttft"].items():
            lines.append(
                f"- TTFT added by the holdback ({mode}): **{_num(t['added_p50_ms'], '{:.1f}')} ms** p50 (p99 {_num(t['added_p99_ms'], '{:.1f}')} ms)"
            )
        o = st["block_lag"]["overall"]
        lines.append(
            f"- Block lag: **0 characters in {_num(o['lag_zero_share'], '{:.0%}')}** of {o['blocked_streams']} blocked streams, "
            f"max {_num(o['lag_max'], '{:.0f}')}, median {_num(o['lag_median'], '{:.0f}')} "
            f"(Azure's asynchronous filter: up to ~{st['azure_async_filter_lag_chars']:,})"
        )
    q = results.get("quality", {})
    if q.get("systems") and "safety-filter" in q["systems"] and "any" in q["systems"]["safety-filter"]:
        s = q["systems"]["safety-filter"]
        lines.append(
            f"- Quality (any harmful category, {q['n']} held-out items): F1 **{_num(s['any']['f1'])}**, AUPRC {_num(s['any']['auprc'])}, "
            f"false-block rate on hard negatives {_num(s['false_block_rate_hard_negatives'], '{:.1%}')}"
        )
    return lines


def summary(results: dict[str, Any]) -> str:
    m = results["machine"]
    meta = results["meta"]
    load = results.get("load", {})
    la = load.get("loadavg_1min") or {}
    out: list[str] = ["# safety-filter benchmark", ""]
    out.append(
        f"- Machine: **{m['cores']} cores, {m['cpu_model']}**, {m.get('memory_gb', '?')} GB, Python {m['python']}, {m['platform']}"
    )
    out.append(
        f"- Load average (1 min) during the run: min {_num(la.get('min'))}, median {_num(la.get('median'))}, max {_num(la.get('max'))} "
        f"(at start {_num((load.get('start') or [None])[0])}); other work on the machine shares the cores"
    )
    out.append(
        f"- Run: `{meta['size']}`, started {meta['started_utc']}, **duration {meta['duration_seconds'] / 60:.1f} min**, "
        f"{meta['repeats']} repeats per figure ({meta.get('http_repeats', meta['repeats'])} per HTTP level, "
        f"{meta.get('overhead_repeats', meta['repeats'])} per overhead scenario; figures are "
        "medians over repeats; latencies give p50/p95/p99)"
    )
    if meta.get("time_budgets_s"):
        budgets = ", ".join(f"{k} {v:.0f} s" for k, v in meta["time_budgets_s"].items())
        out.append(
            f"- Time budgets: {budgets}; work past a budget is cut (fewer samples or cells, shown as such), "
            f"never the whole section. Section times (s): {meta.get('section_seconds', {})}"
        )
    out.append(
        "- Detector load times (s): "
        + ", ".join(
            f"{n} {_num(d['load_seconds'], '{:.1f}')}" for n, d in results["detectors"].items() if d["available"]
        )
    )
    out.append(f"- Policy: `{meta['policy']}` ({meta['policy_version']}); engine: {results['engine']}")
    for name, d in results["detectors"].items():
        if not d["available"]:
            out.append(f"- **Detector `{name}` not available**: {d['error']}")
    out += ["", "## Headline", "", *headline(results), ""]

    lat = results.get("latency")
    if lat:
        out += [
            "## 1. Detector latency (per text, benign first-seen texts)",
            "",
            f"Token counts by {lat['tokens_counted_by']}. `call` is one `detect`/`check_sync` call of `batch` texts.",
            "",
            "| subject | tokens | batch | per text p50 (ms) | p95 | p99 | call p50 (ms) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, s in lat["subjects"].items():
            if not s.get("available"):
                out.append(f"| {name} | n/a | n/a | not available: {s.get('error', '')[:80]} | | | |")
                continue
            for c in s["cells"]:
                if "skipped" in c:
                    out.append(f"| {name} | {c['tokens']} | {c['batch']} | skipped: {c['skipped']} | | | |")
                    continue
                out.append(
                    f"| {name} | {c['tokens']} (~{c['measured_tokens_mean']:.0f}) | {c['batch']} | {_num(c['per_text_p50_ms'], '{:.3f}')} | "
                    f"{_num(c['per_text_p95_ms'], '{:.3f}')} | {_num(c['per_text_p99_ms'], '{:.3f}')} | {_num(c['call_p50_ms'], '{:.3f}')} |"
                )
        out += ["", "![latency](latency.png)", ""]

    ov = results.get("overhead")
    if ov:
        out += [
            "## 2. Middleware overhead (in-process ASGI, JSON chat turn: 1 KB prompt, 2 KB completion)",
            "",
            "| scenario | without p50 / p95 / p99 (ms) | with p50 / p95 / p99 (ms) | added p50 / p95 / p99 (ms) | ratio p50 |",
            "|---|---|---|---|---:|",
        ]
        for n, s in ov["scenarios"].items():
            out.append(
                f"| {n} | {_num(s['without_p50_ms'], '{:.2f}')} / {_num(s['without_p95_ms'], '{:.2f}')} / {_num(s['without_p99_ms'], '{:.2f}')} | "
                f"{_num(s['with_p50_ms'])} / {_num(s['with_p95_ms'])} / {_num(s['with_p99_ms'])} | "
                f"**{_num(s['added_p50_ms'])}** / {_num(s['added_p95_ms'])} / {_num(s['added_p99_ms'])} | x{_num(s['ratio_p50'], '{:.1f}')} |"
            )
        out += [
            "",
            "cold: every text first seen; warm: 3 earlier turns (9 KB of history) cached, new prompt and completion; "
            "cached: the same request again. The echo model answers in a fraction of a millisecond, so the ratio shows the filter's "
            "cost against an instant app; against a real model (hundreds of ms per turn) the added milliseconds are what counts.",
            "",
            "![overhead](overhead.png)",
            "",
        ]

    http = results.get("http")
    if http and http.get("targets"):
        srv = http.get("server", {})
        out += [
            "## 3. Over HTTP (uvicorn, 127.0.0.1, closed loop)",
            "",
            f"Filter: middleware + UpstreamProxy, uvicorn 1 worker (loop `{srv.get('uvicorn_loop')}`, http `{srv.get('uvicorn_http')}`), "
            f"engine {srv.get('engine')}; fake upstream in its own process; load generator in a third. "
            f"{http['request']}; time cap {http['time_cap_s']} s per run, requests per run {http['requests_per_run']}.",
            "",
            "| concurrency | direct req/s | filter req/s (200 only) | ratio | direct p50 / p95 / p99 (ms) | filter p50 / p95 / p99 (ms) | filter answers not 200 | client errors |",
            "|---:|---:|---:|---:|---|---|---|---|",
        ]
        for c in http["targets"]["filter"]:
            d, f = http["targets"]["direct"][c], http["targets"]["filter"][c]
            errs = sum(sum(e.values()) for e in f.get("errors", [])) + sum(sum(e.values()) for e in d.get("errors", []))
            answered = [(str(k), v) for run in f.get("statuses", []) for k, v in run.items()]
            not_ok = sum(v for k, v in answered if k != "200")
            codes = sorted({k for k, v in answered if k != "200"})
            not_ok_text = f"{not_ok} of {sum(v for _, v in answered)}" + (f" ({', '.join(codes)})" if codes else "")
            out.append(
                f"| {c} | {_num(d['throughput_rps'], '{:.0f}')} | **{_num(f['throughput_rps'], '{:.1f}')}** "
                f"({_num(f.get('ok_throughput_rps'), '{:.1f}')}) | "
                f"{_num(http['comparison'][c]['throughput_ratio'], '{:.2f}')} | "
                f"{_num(d['p50_ms'], '{:.1f}')} / {_num(d['p95_ms'], '{:.1f}')} / {_num(d['p99_ms'], '{:.1f}')} | "
                f"{_num(f['p50_ms'], '{:.1f}')} / {_num(f['p95_ms'], '{:.1f}')} / {_num(f['p99_ms'], '{:.1f}')} | {not_ok_text} | {errs} |"
            )
        out += [
            "",
            "A 503 is the fail-closed answer when detection takes longer than the policy's `detectors.timeout_seconds`: "
            "under overload the filter refuses rather than letting text through unchecked. Latencies count every answer.",
            "",
            "![http](http.png)",
            "",
        ]

    st = results.get("streaming")
    if st:
        s = st["settings"]
        out += [
            "## 4. Streaming",
            "",
            f"Guard settings: check every {s['check_every_chars']} chars, holdback {s['holdback_chars']} chars, context {s['context_chars']} chars.",
            "",
            "| TTFT | without p50 / p99 (ms) | with p50 / p99 (ms) | added p50 / p95 / p99 (ms) |",
            "|---|---|---|---|",
        ]
        for mode, t in st["ttft"].items():
            note = f" ({t['chars_per_second']:.0f} chars/s)" if t.get("chars_per_second") else ""
            out.append(
                f"| {mode}{note} | {_num(t['without_p50_ms'])} / {_num(t['without_p99_ms'])} | {_num(t['with_p50_ms'])} / {_num(t['with_p99_ms'])} | "
                f"**{_num(t['added_p50_ms'])}** / {_num(t['added_p95_ms'])} / {_num(t['added_p99_ms'])} |"
            )
        bl = st["block_lag"]
        out += [
            "",
            f"Block lag over {bl['items']} completions with a harmful part ({bl['items_source']}):",
            "",
            "| event size (chars) | streams | blocked | not blocked | lag max | lag median | share with lag 0 |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for size, v in bl["by_event_chars"].items():
            out.append(
                f"| {size} | {v['streams']} | {v['blocked']} | {v['not_blocked']} | **{_num(v['lag_max'], '{:.0f}')}** | "
                f"{_num(v['lag_median'], '{:.0f}')} | {_num(v['lag_zero_share'], '{:.0%}')} |"
            )
        out += [
            "",
            f"Azure OpenAI's asynchronous filter mode may let about {st['azure_async_filter_lag_chars']:,} characters through before "
            "it cuts a stream. The stream guard never releases text before it was checked, so a harmful span that the "
            "detectors flag on the text held back never reaches the client (lag 0). A lag above 0 means the detectors judged "
            "the first part of the harmful passage harmless on its own and flagged the stream only once more of it had "
            "arrived (lag is counted from the first character of the passage, conservatively). "
            "'not blocked' streams are misses of the detectors (a quality matter), not lag.",
            "",
        ]
        nonzero = bl.get("nonzero") or []
        if nonzero:
            worst: dict[str, dict[str, Any]] = {}
            for item in nonzero:
                if item["id"] not in worst or item["lag"] > worst[item["id"]]["lag"]:
                    worst[item["id"]] = item
            out += [
                "Streams with a lag above 0 (worst event size each): "
                + ", ".join(
                    f"`{k}` {v['lag']} chars ({v['event_chars']}-char events)" for k, v in sorted(worst.items())
                )
                + ".",
                "",
            ]
        out += [
            "![streaming](streaming.png)",
            "",
        ]

    q = results.get("quality")
    if q:
        out += ["## 5. Quality against peers", ""]
        if q.get("skipped"):
            out += [f"Skipped: {q['skipped']}", ""]
        else:
            out += [
                f"Data: `{q['data']}` ({q['n']} items: {q['harmful']} harmful, {q['benign']} benign of which {q['hard_negatives']} hard negatives; "
                f"labels {q['label_counts']}). `any` = the item has a harmful label / the system flags it: the only column for one-score peers.",
                "",
                "| system | any: P | R | F1 | AUPRC | false-block benign | false-block hard neg. | ms/text (batched) | ms/text single p50 / p99 |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---|",
            ]
            for name, s in q["systems"].items():
                if s.get("skipped"):
                    out.append(f"| {name} | skipped: {s['skipped'][:120]} | | | | | | | |")
                    continue
                a = s["any"]
                out.append(
                    f"| {name} | {_num(a['precision'])} | {_num(a['recall'])} | **{_num(a['f1'])}** | {_num(a['auprc'])} | "
                    f"{_num(s['false_block_rate_benign'], '{:.1%}')} | {_num(s['false_block_rate_hard_negatives'], '{:.1%}')} | "
                    f"{_num(s['latency_per_text_ms'], '{:.3f}')} | {_num(s['single_text']['p50_ms'], '{:.3f}')} / {_num(s['single_text']['p99_ms'], '{:.3f}')} |"
                )
            cats = [c for c in ("hate", "extremism", "non_consensual", "sexual")]
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
                            else f"{_num(v['precision'])} / {_num(v['recall'])} / **{_num(v['f1'])}** / {_num(v['auprc'])}"
                        )
                    out.append(f"| {name} | " + " | ".join(cells) + " |")
            ran = [(n, s) for n, s in q["systems"].items() if "hard_negatives_by_kind" in s]
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
                    "| kind | n | " + " | ".join(n for n, _ in ran) + " |",
                    "|---|---:|" + "---:|" * len(ran),
                ]
                for kind in top:
                    cells = [
                        _num(s["hard_negatives_by_kind"].get(kind, {}).get("false_block_rate"), "{:.0%}")
                        for _, s in ran
                    ]
                    out.append(f"| {kind} | {kinds[kind]} | " + " | ".join(cells) + " |")
            out += ["", "Systems:", ""]
            for name, s in q["systems"].items():
                out.append(f"- **{name}**: {s['description']}")
            out += ["", "![quality](quality.png)", ""]
    out.append(f"Raw figures: `results.json`. Plots: {', '.join(results.get('plots', [])) or 'none'}.")
    return "\n".join(out) + "\n"
