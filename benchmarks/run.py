"""`run_bench`: every section in order, then the report (summary.md, results.json, plots)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import random
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks import http_load, latency, overhead, plots, quality, stages, streaming, summary
from benchmarks.common import (
    SIZES,
    DetectorStatus,
    LoadSampler,
    Sizes,
    bench_policy,
    engine_for,
    engine_label,
    load_detectors,
    machine_info,
    progress_bar,
)
from benchmarks.peers import System, alt_profanity_check, better_profanity, engine_system, llm_guard_rules
from safety_filter.engine import Engine
from safety_filter.evaluation import row_labels
from safety_filter.policy import Policy

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


@dataclass
class _Inputs:
    """What every section reads: sizes, the policy and its loaded detectors, the data."""

    sizes: Sizes
    policy_path: str | None
    policy: Policy
    status: dict[str, DetectorStatus]
    rows: list[dict[str, Any]]
    quality_path: Path | None
    block_items: list[dict[str, Any]]
    items_source: str
    fp32_checkpoint: Path
    seed: int

    def engine(self) -> Engine:
        return engine_for(self.policy, self.status)

    def rules_detector(self) -> Any:
        rules = self.status.get("rules")
        return rules.detector if rules is not None and rules.available else None


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
    started, t0 = time.time(), time.perf_counter()
    sampler = LoadSampler(every=5.0).start()
    policy_path = str(policy) if policy is not None else None
    full_policy = bench_policy(policy_path)
    # the HTTP section's servers start now and load their detectors alongside ours (no measurement runs meanwhile)
    servers = http_load.start_servers(policy_path) if "http" in sections else None
    results: dict[str, Any] = {}
    bar = None
    try:
        status = load_detectors(full_policy)
        inputs = _inputs(sizes, policy_path, full_policy, status, sections, data, streams, fp32_checkpoint, seed)
        results = {
            "meta": _meta(sizes, full_policy, sections, seed, started),
            "machine": machine_info(),
            "detectors": {name: s.to_dict() for name, s in status.items()},
            "engine": engine_label(status),
        }
        bar = progress_bar(_steps(sizes, sections, inputs.rows), enabled=progress)
        _run_sections(inputs, sections, results, bar, servers, t0)
        bar.set_description("bench: writing the report")
        results["load"] = sampler.stop()
        results = _write_report(results, out, t0)
        bar.update()
    finally:
        for server in servers or ():
            server.__exit__()  # no-op when the section already stopped it
        if bar is not None:
            bar.close()
        if "load" not in results:
            sampler.stop()
    return results


def _inputs(
    sizes: Sizes,
    policy_path: str | None,
    policy: Policy,
    status: dict[str, DetectorStatus],
    sections: tuple[str, ...],
    data: str | Path | None,
    streams: str | Path | None,
    fp32_checkpoint: str | Path | None,
    seed: int,
) -> _Inputs:
    quality_path = find_data(data, QUALITY_DATA) if {"quality", "stages"} & set(sections) else None
    streams_path = find_data(streams, BLOCK_STREAMS) if "streaming" in sections else None
    rng = random.Random(seed)
    rows = quality.load_rows(quality_path, sizes.quality_rows, rng) if quality_path else []
    rules = status.get("rules")
    rules_detector = rules.detector if rules is not None and rules.available else None
    block_items, items_source = streaming.load_block_items(streams_path, sizes.block_items, rng, rules_detector)
    checkpoint = Path(fp32_checkpoint) if fp32_checkpoint else DEFAULT_FP32_CHECKPOINT
    return _Inputs(sizes, policy_path, policy, status, rows, quality_path, block_items, items_source, checkpoint, seed)


def _meta(sizes: Sizes, policy: Policy, sections: tuple[str, ...], seed: int, started: float) -> dict[str, Any]:
    try:
        from importlib.metadata import version

        package_version = version("safety-filter")
    except Exception:
        import safety_filter

        package_version = getattr(safety_filter, "__version__", "unknown")
    return {
        "tool": "python -m benchmarks",
        "size": sizes.name,
        "started_utc": _dt.datetime.fromtimestamp(started, _dt.UTC).isoformat(timespec="seconds"),
        "policy": policy.source,
        "policy_version": policy.label,
        "sections": list(sections),
        "repeats": sizes.repeats,
        "http_repeats": sizes.http_repeats or sizes.repeats,
        "overhead_repeats": sizes.overhead_repeats or sizes.repeats,
        "time_budgets_s": dict(sizes.budgets),
        "stage_turns": sizes.stage_turns,
        "seed": seed,
        "safety_filter_version": package_version,
    }


def _steps(sizes: Sizes, sections: tuple[str, ...], rows: list[dict[str, Any]]) -> int:
    total = 1  # the report
    total += latency.steps(sizes, 4) if "latency" in sections else 0
    total += stages.steps(sizes) if "stages" in sections else 0
    total += overhead.steps(sizes) if "overhead" in sections else 0
    total += http_load.steps(sizes) if "http" in sections else 0
    total += streaming.steps(sizes) if "streaming" in sections else 0
    total += quality.steps(5) if "quality" in sections and rows else 0
    return total


def _run_sections(
    inputs: _Inputs, sections: tuple[str, ...], results: dict[str, Any], bar: tqdm, servers: Any, t0: float
) -> None:
    sizes, seed = inputs.sizes, inputs.seed
    timings = results["meta"]["section_seconds"] = {"setup": round(time.perf_counter() - t0, 2)}
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "latency": lambda: _with_engine(inputs, lambda e: latency.run(inputs.status, e, sizes, bar, seed=seed + 1)),
        "stages": lambda: _with_engine(
            inputs,
            lambda e: stages.run(inputs.status, e, sizes, bar, _harmful(inputs), inputs.fp32_checkpoint, seed=seed + 6),
        ),
        "overhead": lambda: overhead.run(inputs.engine, sizes, bar, seed=seed + 2),
        "http": lambda: http_load.run(inputs.policy_path, sizes, bar, seed=seed + 3, servers=servers),
        "streaming": lambda: streaming.run(
            inputs.engine, sizes, bar, inputs.block_items, inputs.items_source, seed=seed + 4
        ),
        "quality": lambda: _quality(inputs, bar),
    }
    for name in SECTIONS:
        if name in sections:
            began = time.perf_counter()
            results[name] = runners[name]()
            timings[name] = round(time.perf_counter() - began, 2)


def _with_engine(inputs: _Inputs, measure: Callable[[Engine], dict[str, Any]]) -> dict[str, Any]:
    engine = inputs.engine()
    try:
        return measure(engine)
    finally:
        engine.close()


def _harmful(inputs: _Inputs) -> list[str]:
    return [str(r["text"]) for r in inputs.rows if row_labels(r)][: inputs.sizes.stage_harmful]


def _quality(inputs: _Inputs, bar: tqdm) -> dict[str, Any]:
    if not inputs.rows:
        return {"skipped": f"no labelled evaluation set found (looked for {QUALITY_DATA}; pass --data FILE)"}
    systems = _quality_systems(inputs)
    return quality.run(systems, inputs.rows, inputs.sizes, bar, str(inputs.quality_path), seed=inputs.seed + 5)


def _quality_systems(inputs: _Inputs) -> list[System]:
    policy, status, rules_detector = inputs.policy, inputs.status, inputs.rules_detector()
    block_categories = {c for c in policy.categories if policy.rule(c, "prompt").action == "block"}
    ours = engine_system(
        "safety-filter", f"full engine, policy {policy.label}: {engine_label(status)}", inputs.engine()
    )
    if rules_detector is not None:
        rules_only = engine_system(
            "safety-filter rules only",
            "our shipped rule lists alone (classifier and NCII detector off)",
            engine_for(bench_policy(inputs.policy_path, only=("rules",)), {"rules": status["rules"]}),
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


def _write_report(results: dict[str, Any], out: Path, t0: float) -> dict[str, Any]:
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results["plots"] = plots.plots(results, out)
    results["meta"]["section_seconds"]["report"] = round(time.perf_counter() - began, 2)
    results["meta"]["duration_seconds"] = time.perf_counter() - t0
    results = summary.clean(results)
    results["headline"] = summary.headline(results)
    (out / "results.json").write_text(
        json.dumps(results, indent=1, default=_jsonable, ensure_ascii=False, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    (out / "summary.md").write_text(summary.summary(results), encoding="utf-8")
    return results


def _jsonable(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    if isinstance(value, float) and value != value:
        return None
    return str(value)
