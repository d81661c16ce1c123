"""`run_bench`: every section in order, then the report (summary.md, results.json, plots)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import random
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from benchmarks.common import SIZES, LoadSampler, Sizes, machine_info, progress_bar
from safety_filter.evaluation import row_labels

SECTIONS = ("latency", "stages", "overhead", "http", "streaming", "quality")

__all__ = ["SECTIONS", "SIZES", "MissingDependency", "find_data", "run_bench"]


class MissingDependency(RuntimeError):
    """A package the benchmark needs is not installed (the message says what to install)."""


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingDependency(
            "the benchmark needs matplotlib for its plots: install the bench extras with `pip install -e .[bench]`"
        ) from None


ROOT = Path(__file__).resolve().parents[1]  # the checkout this package sits in


def find_data(explicit: str | Path | None, relative: str) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"no such data file: {path}")
        return path
    for base in (Path.cwd(), ROOT):
        candidate = base / relative
        if candidate.is_file():
            return candidate
    return None


QUALITY_DATA = "classifiers/data/splits/test.jsonl"
# where `python -m classifiers.train` (default --workdir) keeps the fp32 network the shipped model came from
DEFAULT_FP32_CHECKPOINT = Path(tempfile.gettempdir()) / "safety-filter-train" / "model_fp32.pt"
BLOCK_STREAMS = "benchmarks/data/block_streams.jsonl"


def run_bench(
    out: str | Path,
    *,
    size: str | Sizes = "quick",
    policy: str | Path | None = None,
    data: str | Path | None = None,
    streams: str | Path | None = None,
    sections: tuple[str, ...] = SECTIONS,
    progress: bool = True,
    fp32_checkpoint: str | Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the benchmark and write the report into `out`; returns the results (as in results.json)."""
    require_matplotlib()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sizes = SIZES[size] if isinstance(size, str) else size
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown bench section(s): {', '.join(sorted(unknown))} (known: {', '.join(SECTIONS)})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    t0 = time.perf_counter()
    sampler = LoadSampler(every=5.0).start()

    from benchmarks import http_load, latency, overhead, quality, stages, streaming
    from benchmarks.common import bench_policy, engine_for, engine_label, load_detectors
    from benchmarks.peers import (
        System,
        alt_profanity_check,
        better_profanity,
        engine_system,
        llm_guard_rules,
    )

    policy_path = str(policy) if policy is not None else None
    full_policy = bench_policy(policy_path)
    # the HTTP section's servers start now and load their detectors alongside ours (no measurement runs meanwhile)
    servers = http_load.start_servers(policy_path) if "http" in sections else None
    try:
        status = load_detectors(full_policy)
    except BaseException:
        for server in servers or ():
            server.__exit__()
        raise
    rules_policy = bench_policy(policy_path, only=("rules",))

    def make_engine():  # type: ignore[no-untyped-def]
        return engine_for(full_policy, status)

    results: dict[str, Any] = {
        "meta": {
            "tool": "safety-filter bench",
            "size": sizes.name,
            "started_utc": _dt.datetime.fromtimestamp(started, _dt.UTC).isoformat(timespec="seconds"),
            "policy": full_policy.source,
            "policy_version": full_policy.label,
            "sections": list(sections),
            "repeats": sizes.repeats,
            "http_repeats": sizes.http_repeats or sizes.repeats,
            "overhead_repeats": sizes.overhead_repeats or sizes.repeats,
            "time_budgets_s": dict(sizes.budgets),
            "stage_turns": sizes.stage_turns,
            "seed": seed,
        },
        "machine": machine_info(),
        "detectors": {name: s.to_dict() for name, s in status.items()},
        "engine": engine_label(status),
    }
    try:
        from importlib.metadata import version

        results["meta"]["safety_filter_version"] = version("safety-filter")
    except Exception:
        import safety_filter

        results["meta"]["safety_filter_version"] = getattr(safety_filter, "__version__", "unknown")

    quality_path = find_data(data, QUALITY_DATA) if {"quality", "stages"} & set(sections) else None
    streams_path = find_data(streams, BLOCK_STREAMS) if "streaming" in sections else None
    rng = random.Random(seed)
    rows = quality.load_rows(quality_path, sizes.quality_rows, rng) if quality_path else []
    rules_status = status.get("rules")
    rules_detector = rules_status.detector if rules_status is not None and rules_status.available else None
    block_items, items_source = streaming.load_block_items(streams_path, sizes.block_items, rng, rules_detector)

    def quality_systems() -> list[Any]:
        block_categories = {c for c in full_policy.categories if full_policy.rule(c, "prompt").action == "block"}
        ours = engine_system(
            "safety-filter", f"full engine, policy {full_policy.label}: {engine_label(status)}", make_engine()
        )
        if rules_detector is not None:
            rules_only = engine_system(
                "safety-filter rules only",
                "our shipped rule lists alone (classifier and NCII detector off)",
                engine_for(rules_policy, {"rules": status["rules"]}),
            )
        else:
            rules_only = System(
                "safety-filter rules only", "our shipped rule lists alone", True, skipped="the rule lists did not load"
            )
        return [
            ours,
            rules_only,
            alt_profanity_check(),
            better_profanity(),
            llm_guard_rules(rules_detector, block_categories),
        ]

    n_subjects = 4
    total = 1
    total += latency.steps(sizes, n_subjects) if "latency" in sections else 0
    total += stages.steps(sizes) if "stages" in sections else 0
    total += overhead.steps(sizes) if "overhead" in sections else 0
    total += http_load.steps(sizes) if "http" in sections else 0
    total += streaming.steps(sizes) if "streaming" in sections else 0
    total += quality.steps(5) if "quality" in sections and rows else 0
    bar = progress_bar(total, enabled=progress)
    try:
        section_t0 = t0
        timings = results["meta"]["section_seconds"] = {}

        def lap(name: str) -> None:
            nonlocal section_t0
            now = time.perf_counter()
            timings[name] = round(now - section_t0, 2)
            section_t0 = now

        lap("setup")
        if "latency" in sections:
            engine = make_engine()
            results["latency"] = latency.run(status, engine, sizes, bar, seed=seed + 1)
            engine.close()
            lap("latency")
        if "stages" in sections:
            engine = make_engine()
            harmful = [str(r["text"]) for r in rows if row_labels(r)][: sizes.stage_harmful]
            checkpoint = Path(fp32_checkpoint) if fp32_checkpoint else DEFAULT_FP32_CHECKPOINT
            results["stages"] = stages.run(status, engine, sizes, bar, harmful, checkpoint, seed=seed + 6)
            engine.close()
            lap("stages")
        if "overhead" in sections:
            results["overhead"] = overhead.run(make_engine, sizes, bar, seed=seed + 2)
            lap("overhead")
        if "http" in sections:
            results["http"] = http_load.run(policy_path, sizes, bar, seed=seed + 3, servers=servers)
            lap("http")
        if "streaming" in sections:
            results["streaming"] = streaming.run(make_engine, sizes, bar, block_items, items_source, seed=seed + 4)
            lap("streaming")
        if "quality" in sections:
            if rows:
                results["quality"] = quality.run(quality_systems(), rows, sizes, bar, str(quality_path), seed=seed + 5)
            else:
                results["quality"] = {
                    "skipped": f"no labelled evaluation set found (looked for {QUALITY_DATA}; pass --data FILE)"
                }
            lap("quality")
        bar.set_description("bench: writing the report")
        results["load"] = sampler.stop()
        from benchmarks import plots, summary

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results["plots"] = plots.plots(results, out)
        lap("report")
        results["meta"]["duration_seconds"] = time.perf_counter() - t0
        results = summary.clean(results)
        results["headline"] = summary.headline(results)
        (out / "results.json").write_text(
            json.dumps(results, indent=1, default=_jsonable, ensure_ascii=False, allow_nan=False) + "\n",
            encoding="utf-8",
        )
        (out / "summary.md").write_text(summary.summary(results), encoding="utf-8")
        bar.update()
    finally:
        for server in servers or ():
            server.__exit__()  # no-op when the section already stopped it
        bar.close()
        if "load" not in results:
            sampler.stop()
    return results


def _jsonable(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    if isinstance(value, float) and value != value:
        return None
    return str(value)
