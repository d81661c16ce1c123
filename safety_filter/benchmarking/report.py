"""The report: PNG plots (matplotlib, Agg) and the Markdown summary, from the results dict."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from safety_filter.benchmarking.common import machine_label


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


# -- plots ---------------------------------------------------------------------------------


def plots(results: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    label = machine_label(results["machine"])
    made: list[str] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        made.append(name)

    lat = results.get("latency")
    if lat:
        subjects = [(n, s) for n, s in lat["subjects"].items() if s.get("available")]
        batches = sorted({c["batch"] for _, s in subjects for c in s["cells"] if "skipped" not in c})
        fig, axes = plt.subplots(1, max(1, len(batches)), figsize=(5.5 * max(1, len(batches)), 4.2), squeeze=False)
        for ax, batch in zip(axes[0], batches, strict=False):
            for name, s in subjects:
                cells = [c for c in s["cells"] if c["batch"] == batch and "skipped" not in c]
                xs = [c["tokens"] for c in cells]
                ax.errorbar(
                    xs,
                    [c["per_text_p50_ms"] for c in cells],
                    yerr=[[0] * len(cells), [max(0.0, c["per_text_p99_ms"] - c["per_text_p50_ms"]) for c in cells]],
                    marker="o",
                    capsize=3,
                    label=name,
                )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("text length (tokens)")
            ax.set_ylabel("ms per text (p50, bar to p99)")
            ax.set_title(f"batch {batch}")
            ax.legend(fontsize=8)
        missing = [n for n, s in lat["subjects"].items() if not s.get("available")]
        fig.suptitle(
            f"Detector latency per text ({label})" + (f"; not available: {', '.join(missing)}" if missing else ""),
            fontsize=9,
        )
        save(fig, "latency.png")

    ov = results.get("overhead")
    if ov:
        names = list(ov["scenarios"])
        fig, ax = plt.subplots(figsize=(7, 4.2))
        width = 0.13
        qs = ("p50", "p95", "p99")
        for k, q in enumerate(qs):
            for j, kind in enumerate(("without", "with")):
                vals = [ov["scenarios"][n][f"{kind}_{q}_ms"] or 0 for n in names]
                pos = [i + (k * 2 + j - 2.5) * width for i in range(len(names))]
                ax.bar(
                    pos,
                    vals,
                    width,
                    label=f"{kind} middleware {q}",
                    alpha=0.55 if kind == "without" else 0.95,
                    color=f"C{k}",
                    hatch="//" if kind == "without" else None,
                )
        ax.set_xticks(range(len(names)), [f"{n}\n(+{ov['scenarios'][n]['added_p50_ms']:.1f} ms p50)" for n in names])
        ax.set_ylabel("ms per chat turn (1 KB prompt, 2 KB completion)")
        ax.set_yscale("log")
        ax.set_title(f"Middleware overhead, in-process ({label})", fontsize=9)
        ax.legend(fontsize=7, ncol=3)
        save(fig, "overhead.png")

    http = results.get("http")
    if http and http.get("targets"):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
        for name, levels in http["targets"].items():
            cs = [int(c) for c in levels]
            a1.plot(cs, [levels[str(c)]["throughput_rps"] for c in cs], marker="o", label=f"{name}: all answers")
            if name == "filter":
                a1.plot(
                    cs,
                    [max(levels[str(c)].get("ok_throughput_rps") or 0, 1e-3) for c in cs],
                    marker="s",
                    linestyle="--",
                    label="filter: 200 answers only",
                )
            a2.plot(cs, [levels[str(c)]["p50_ms"] for c in cs], marker="o", label=f"{name} p50")
            a2.plot(cs, [levels[str(c)]["p99_ms"] for c in cs], marker="x", linestyle="--", label=f"{name} p99")
        for ax in (a1, a2):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("concurrent clients (closed loop)")
            ax.legend(fontsize=8)
        a1.set_ylabel("requests per second")
        a1.set_yscale("log")
        a2.set_ylabel("latency (ms)")
        a2.set_yscale("log")
        fig.suptitle(f"Over HTTP: filter (serve --upstream) vs the upstream directly ({label})", fontsize=9)
        save(fig, "http.png")

    st = results.get("streaming")
    if st:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
        modes = list(st["ttft"])
        for j, kind in enumerate(("without", "with")):
            a1.bar(
                [i + (j - 0.5) * 0.35 for i in range(len(modes))],
                [st["ttft"][m][f"{kind}_p50_ms"] or 0 for m in modes],
                0.35,
                yerr=[
                    [0] * len(modes),
                    [
                        max(0.0, (st["ttft"][m][f"{kind}_p99_ms"] or 0) - (st["ttft"][m][f"{kind}_p50_ms"] or 0))
                        for m in modes
                    ],
                ],
                capsize=3,
                label=f"{kind} middleware",
            )
        a1.set_xticks(range(len(modes)), modes)
        a1.set_ylabel("time to first token (ms, p50, bar to p99)")
        a1.set_title("TTFT (4-char events)", fontsize=9)
        a1.legend(fontsize=8)
        lag = st["block_lag"]["by_event_chars"]
        sizes = list(lag)
        bars = a2.bar(
            range(len(sizes)), [lag[s]["lag_max"] or 0 for s in sizes], 0.5, label="safety-filter: max lag (chars)"
        )
        for rect, s in zip(bars, sizes, strict=True):
            value = lag[s]["lag_max"]
            a2.annotate(
                "n/a" if value is None else f"{value:.0f}",
                (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=9,
            )
        a2.axhline(
            st["azure_async_filter_lag_chars"],
            color="C3",
            linestyle="--",
            label="Azure asynchronous filter: up to ~1,000 chars",
        )
        a2.set_xticks(
            range(len(sizes)),
            [f"{s}-char events\n{lag[s]['blocked']}/{lag[s]['streams']} blocked" for s in sizes],
            fontsize=8,
        )
        a2.set_ylabel("characters sent after the harmful part began")
        a2.set_ylim(0, st["azure_async_filter_lag_chars"] * 1.15)
        a2.set_title("Block lag over blocked streams", fontsize=9)
        a2.legend(fontsize=8)
        fig.suptitle(f"Streaming ({label})", fontsize=9)
        save(fig, "streaming.png")

    q = results.get("quality")
    if q and q.get("systems"):
        systems = [(n, s) for n, s in q["systems"].items() if "any" in s]
        cats = [
            "any",
            *[
                c
                for c in ("hate", "extremism", "non_consensual", "sexual")
                if any(c in s.get("categories", {}) for _, s in systems)
            ],
        ]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [3, 2]})
        width = 0.8 / max(1, len(systems))
        for j, (name, s) in enumerate(systems):
            vals = [(s["any"] if c == "any" else s.get("categories", {}).get(c, {})).get("f1") for c in cats]
            a1.bar(
                [i + (j - (len(systems) - 1) / 2) * width for i in range(len(cats))],
                [v or 0 for v in vals],
                width,
                label=name,
            )
        a1.set_xticks(range(len(cats)), cats)
        a1.set_ylabel("F1")
        a1.set_ylim(0, 1)
        a1.set_title("F1 per category (one-score peers: 'any' only)", fontsize=9)
        a1.legend(fontsize=7)
        names = [n for n, _ in systems]
        a2.barh(
            range(len(systems)),
            [s["false_block_rate_hard_negatives"] or 0 for _, s in systems],
            0.4,
            label="hard negatives",
        )
        a2.barh(
            [i + 0.4 for i in range(len(systems))],
            [s["false_block_rate_benign"] or 0 for _, s in systems],
            0.4,
            label="all benign",
        )
        a2.set_yticks([i + 0.2 for i in range(len(systems))], names, fontsize=8)
        a2.set_xlabel("false-block rate")
        a2.set_title("Blocked although benign", fontsize=9)
        a2.legend(fontsize=8)
        fig.suptitle(f"Quality on {q['n']} held-out items ({label})", fontsize=9)
        save(fig, "quality.png")
    return made


# -- summary -------------------------------------------------------------------------------


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
