"""The report's PNG plots (matplotlib, Agg), from the results dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common import machine_label


def plots(results: dict[str, Any], out: Path) -> list[str]:
    """Write one PNG per section that ran; returns their names. Cells cut by a time budget are marked."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    label = machine_label(results["machine"])
    made: list[str] = []
    drawers = {"latency": _latency, "overhead": _overhead, "http": _http, "streaming": _streaming, "quality": _quality}
    for key, draw in drawers.items():
        section = results.get(key)
        if not section or (key in ("http", "quality") and not section.get("targets" if key == "http" else "systems")):
            continue
        fig = draw(plt, section, label)
        fig.tight_layout()
        fig.savefig(out / f"{key}.png", dpi=110)
        plt.close(fig)
        made.append(f"{key}.png")
    return made


def _latency(plt: Any, lat: dict[str, Any], label: str) -> Any:
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
            _mark_cut_cells(ax, [c for c in s["cells"] if c["batch"] == batch], name)
        _mark_skipped_cells(ax, subjects, batch)
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
    return fig


def _overhead(plt: Any, ov: dict[str, Any], label: str) -> Any:
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
    ticks = [
        f"{n}\n(+{ov['scenarios'][n]['added_p50_ms']:.1f} ms p50)"
        + ("\nCUT by the time budget" if ov["scenarios"][n].get("cut") else "")
        for n in names
    ]
    ax.set_xticks(range(len(names)), ticks)
    ax.set_ylabel("ms per chat turn (1 KB prompt, 2 KB completion)")
    ax.set_yscale("log")
    ax.set_title(f"Middleware overhead, in-process ({label})", fontsize=9)
    ax.legend(fontsize=7, ncol=3)
    return fig


def _http(plt: Any, http: dict[str, Any], label: str) -> Any:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, levels in http["targets"].items():
        cs = [int(c) for c in levels]
        a1.plot(cs, [levels[str(c)]["throughput_rps"] for c in cs], marker="o", label=f"{name}: all answers")
        capped = [c for c in cs if levels[str(c)].get("capped_runs")]
        a1.scatter(
            capped,
            [levels[str(c)]["throughput_rps"] for c in capped],
            s=140,
            facecolors="none",
            edgecolors="red",
            label=f"{name}: run cut by the time cap" if capped else None,
            zorder=3,
        )
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
    return fig


def _streaming(plt: Any, st: dict[str, Any], label: str) -> Any:
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
    bl = st["block_lag"]
    cut = f"\nCUT: {bl['items']} of {bl['items_available']} streams" if bl["items"] < bl["items_available"] else ""
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
        [f"{s}-char events\n{lag[s]['blocked']}/{lag[s]['streams']} blocked" + cut for s in sizes],
        fontsize=8,
    )
    a2.set_ylabel("characters sent after the harmful part began")
    a2.set_ylim(0, st["azure_async_filter_lag_chars"] * 1.15)
    a2.set_title("Block lag over blocked streams", fontsize=9)
    a2.legend(fontsize=8)
    fig.suptitle(f"Streaming ({label})", fontsize=9)
    return fig


def _quality(plt: Any, q: dict[str, Any], label: str) -> Any:
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
    return fig


def _mark_cut_cells(ax: Any, cells: list[dict[str, Any]], name: str) -> None:
    """A red ring on the cells that ran fewer repeats than planned (the time budget)."""
    short = [c for c in cells if c.get("cut") and "skipped" not in c]
    if short:
        ax.scatter(
            [c["tokens"] for c in short],
            [c["per_text_p50_ms"] for c in short],
            s=140,
            facecolors="none",
            edgecolors="red",
            zorder=3,
            label=f"{name}: fewer repeats (time budget)",
        )


def _mark_skipped_cells(ax: Any, subjects: list[tuple[str, dict[str, Any]]], batch: int) -> None:
    """One red note per text length whose cells the time budget left out, naming the subjects."""
    skipped: dict[int, list[str]] = {}
    for name, s in subjects:
        for c in s["cells"]:
            if c["batch"] == batch and "skipped" in c:
                skipped.setdefault(c["tokens"], []).append(name)
    for tokens, names in skipped.items():
        ax.annotate(
            "not run\n(time budget):\n" + "\n".join(names),
            (tokens, 0.03),
            xycoords=("data", "axes fraction"),
            color="red",
            fontsize=7,
            ha="right",
        )
