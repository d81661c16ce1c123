"""Shared pieces of the benchmark: run sizes, the machine, statistics, benign texts, engines, progress.

Nothing here holds harmful text: benign filler is generated from the word pool below; harmful
examples come from data files (the held-out test split, `benchmarks/data/`, the shipped lists).
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from safety_filter.detectors import build_detectors
from safety_filter.detectors.base import Detector
from safety_filter.engine import Engine
from safety_filter.policy import Policy, load_policy

# -- run sizes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How much work each section does. `full` ~10-15 min, `quick` < 2 min, `tiny` seconds (tests)."""

    name: str
    repeats: int  # independent runs per figure; figures are their median
    latency_cell_seconds: float  # time cap of one (subject, size, batch) cell per repeat
    latency_cell_max: int  # at most this many calls per cell per repeat
    latency_tokens: tuple[int, ...] = (32, 128, 512)
    latency_batches: tuple[int, ...] = (1, 16)
    overhead_requests: int = 200  # per scenario per repeat (with and without the middleware each)
    overhead_repeats: int | None = None  # runs per scenario (None: `repeats`)
    http_warmup: int = 16  # requests (4 at a time) before each target's measured runs
    http_concurrency: tuple[int, ...] = (1, 8, 32, 128)
    http_requests: dict[int, int] = field(default_factory=dict)  # concurrency -> requests per run
    http_time_cap: float = 10.0  # seconds per run (no new request after it)
    http_repeats: int | None = None  # runs per concurrency level (None: `repeats`)
    ttft_requests: int = 30  # streams per target per repeat, unpaced
    ttft_paced_requests: int = 10  # streams per target per repeat, paced like a model
    block_items: int = 40  # blocked streams
    stream_cpu_pairs: int = 6  # (stream, JSON twin) pairs for the streaming CPU ratio
    block_event_sizes: tuple[int, ...] = (1, 4, 16, 64)
    stage_turns: int = 10  # chat turns per stage in the stage-cost table
    stage_harmful: int = 64  # harmful test texts for the escalation rate
    quality_rows: int | None = None  # None: the whole evaluation set
    quality_latency_texts: int = 100  # single-text latency sample per system
    budgets: dict[str, float] = field(default_factory=dict)  # section -> seconds; work past it is cut and reported

    def budget(self, section: str) -> float:
        return self.budgets.get(section, float("inf"))


SIZES: dict[str, Sizes] = {
    "full": Sizes(
        name="full",
        repeats=3,
        latency_cell_seconds=1.5,
        latency_cell_max=200,
        overhead_requests=100,
        http_requests={1: 150, 8: 400, 32: 640, 128: 1024},
        http_time_cap=6.0,
        ttft_requests=20,
        ttft_paced_requests=10,
        block_items=60,
        block_event_sizes=(1, 4, 16, 64),
        quality_rows=None,
        quality_latency_texts=60,
        budgets={"latency": 120.0, "stages": 60.0, "overhead": 90.0, "streaming": 120.0},
    ),
    "quick": Sizes(
        name="quick",
        repeats=2,
        latency_cell_seconds=0.12,
        latency_cell_max=20,
        overhead_requests=12,
        http_requests={1: 20, 8: 32, 32: 64, 128: 128},
        http_time_cap=1.0,
        http_repeats=1,
        ttft_requests=3,
        ttft_paced_requests=3,
        overhead_repeats=1,
        http_warmup=4,
        block_items=10,
        stream_cpu_pairs=2,
        block_event_sizes=(1, 64),
        quality_rows=120,
        quality_latency_texts=10,
        stage_turns=3,
        stage_harmful=16,
        budgets={"latency": 18.0, "stages": 12.0, "overhead": 10.0, "streaming": 14.0},
    ),
    "tiny": Sizes(
        name="tiny",
        repeats=2,
        latency_cell_seconds=0.01,
        latency_cell_max=1,
        latency_tokens=(32, 128),
        latency_batches=(1, 4),
        overhead_requests=2,
        http_concurrency=(1, 32),  # 32: the level the headline quotes
        http_requests={1: 2, 32: 32},
        http_time_cap=0.5,
        http_repeats=1,
        ttft_requests=2,
        ttft_paced_requests=2,
        overhead_repeats=1,
        http_warmup=2,
        block_items=2,
        stream_cpu_pairs=1,
        block_event_sizes=(4, 64),
        quality_rows=30,
        quality_latency_texts=2,
        stage_turns=1,
        stage_harmful=4,
        budgets={"latency": 8.0, "stages": 4.0, "overhead": 4.0, "streaming": 6.0},
    ),
}


# -- the machine ---------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cores": usable_cores(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["memory_gb"] = round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        pass
    versions = {}
    for name in ("onnxruntime", "numpy", "uvicorn", "starlette", "httpx", "tokenizers"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = None
    info["versions"] = versions
    return info


def machine_label(info: dict[str, Any]) -> str:
    return f"{info['cores']} cores, {info['cpu_model']}"


class LoadSampler:
    """Samples `os.getloadavg()` every few seconds while the benchmark runs."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[tuple[float, tuple[float, float, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-load", daemon=True)
        self._t0 = time.monotonic()

    def _sample(self) -> None:
        with contextlib.suppress(OSError):  # no load average on this platform
            self.samples.append((round(time.monotonic() - self._t0, 1), os.getloadavg()))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def start(self) -> LoadSampler:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sample()
        one = [s[1][0] for s in self.samples]
        return {
            "start": list(self.samples[0][1]) if self.samples else None,
            "end": list(self.samples[-1][1]) if self.samples else None,
            "loadavg_1min": {"min": min(one), "median": statistics.median(one), "max": max(one)} if one else None,
            "samples": [{"t": t, "loadavg": list(v)} for t, v in self.samples],
        }


# -- statistics ----------------------------------------------------------------------------


def summarize_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """p50/p95/p99/mean in milliseconds of one run's samples."""
    if not seconds:
        return {"n": 0, "p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    p50, p95, p99 = (float(x) for x in np.percentile(ms, (50, 95, 99)))
    return {"n": int(ms.size), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "mean_ms": float(ms.mean())}


def added_ms(without: Sequence[float], with_filter: Sequence[float]) -> dict[str, Any]:
    """p50/p95/p99 without and with the filter, and what the filter adds, in milliseconds."""
    b, m = summarize_ms(without), summarize_ms(with_filter)
    out: dict[str, Any] = {}
    for q in ("p50", "p95", "p99"):
        out[f"without_{q}_ms"] = b[f"{q}_ms"]
        out[f"with_{q}_ms"] = m[f"{q}_ms"]
        out[f"added_{q}_ms"] = m[f"{q}_ms"] - b[f"{q}_ms"]
    out["ratio_p50"] = m["p50_ms"] / b["p50_ms"] if b["p50_ms"] else None
    return out


def median_of_runs(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Combine repeated runs: every numeric figure becomes the median over runs ('runs' keeps them)."""
    out: dict[str, Any] = {}
    keys = [k for k in runs[0] if isinstance(runs[0][k], int | float) and not isinstance(runs[0][k], bool)]
    for key in keys:
        values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
        out[key] = statistics.median(values) if values else None
    out["repeats"] = len(runs)
    out["runs"] = [{k: r[k] for k in keys if k in r} for r in runs]
    return out


# -- benign texts --------------------------------------------------------------------------

_WORD_POOL = (  # benign English and French words the filler text is drawn from
    "the model answers questions about travel cooking gardening and history with short clear sentences "
    "please summarise this report for the weekly meeting our team reviewed the budget and the schedule "
    "for the next quarter the weather was mild and the train arrived on time we compared three recipes "
    "for bread and chose the one with more water and a longer rest le modèle répond aux questions sur les "
    "voyages la cuisine le jardinage et l'histoire avec des phrases courtes et claires merci de résumer "
    "ce rapport pour la réunion de la semaine notre équipe a revu le budget et le calendrier du prochain "
    "trimestre il faisait doux et le train est arrivé à l'heure nous avons comparé trois recettes de pain"
)
_WORDS = _WORD_POOL.split()


def benign_text(rng: random.Random, n_words: int, nonce: str = "") -> str:
    words = [rng.choice(_WORDS) for _ in range(max(1, n_words))]
    sentences: list[str] = []
    i = 0
    while i < len(words):
        k = rng.randint(8, 16)
        chunk = words[i : i + k]
        sentences.append(chunk[0].capitalize() + " " + " ".join(chunk[1:]) + "." if len(chunk) > 1 else chunk[0] + ".")
        i += k
    text = " ".join(sentences)
    return f"Ref {nonce}. {text}" if nonce else text


def benign_chars(rng: random.Random, n_chars: int, nonce: str = "") -> str:
    """Benign text of exactly `n_chars` characters."""
    text = benign_text(rng, n_chars // 4 + 8, nonce)
    while len(text) < n_chars:
        text += " " + benign_text(rng, 32)
    return text[:n_chars].rstrip() + "." * (n_chars - len(text[:n_chars].rstrip()))


# -- engines that degrade gracefully -------------------------------------------------------


@dataclass
class DetectorStatus:
    name: str
    available: bool
    load_seconds: float | None = None
    error: str | None = None
    detector: Detector | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"available": self.available, "load_seconds": self.load_seconds, "error": self.error}


def bench_policy(
    policy_path: str | Path | None, *, cache_size: int | None = None, only: Sequence[str] | None = None
) -> Policy:
    """The policy under test, never reloaded during a run; `only` keeps just these detectors on."""
    policy = load_policy(policy_path)
    detectors = policy.detectors
    if only is not None:
        detectors = detectors.model_copy(
            update={
                "rules": detectors.rules.model_copy(update={"enabled": detectors.rules.enabled and "rules" in only}),
                "classifier": detectors.classifier.model_copy(
                    update={"enabled": detectors.classifier.enabled and "classifier" in only}
                ),
                "ncii": detectors.ncii.model_copy(update={"enabled": detectors.ncii.enabled and "ncii" in only}),
            }
        )
    if cache_size is not None:
        detectors = detectors.model_copy(update={"cache_size": cache_size})
    return policy.model_copy(update={"detectors": detectors, "reload_interval_seconds": 0.0})


def load_detectors(policy: Policy) -> dict[str, DetectorStatus]:
    """Build and load every detector the policy turns on; one that fails is 'not available'."""
    status: dict[str, DetectorStatus] = {}
    for name in ("rules", "classifier", "ncii"):
        if not getattr(policy.detectors, name).enabled:
            status[name] = DetectorStatus(name, False, error="disabled in the policy")
    for detector in build_detectors(policy):
        t0 = time.perf_counter()
        try:
            detector.load()
        except Exception as exc:  # a detector that can't load is reported, not fatal
            status[detector.name] = DetectorStatus(detector.name, False, error=f"{type(exc).__name__}: {exc}")
            continue
        status[detector.name] = DetectorStatus(detector.name, True, time.perf_counter() - t0, detector=detector)
    return status


def engine_for(policy: Policy, status: dict[str, DetectorStatus]) -> Engine:
    """An engine running the detectors that loaded (the same objects, not reloaded per engine)."""
    detectors = [s.detector for s in status.values() if s.available and s.detector is not None]
    return Engine(policy, detectors=detectors)


def engine_label(status: dict[str, DetectorStatus]) -> str:
    on = [n for n, s in status.items() if s.available]
    off = [n for n, s in status.items() if not s.available]
    label = "+".join(on) or "no detector"
    return label + (f" ({', '.join(off)} not available)" if off else "")


# -- progress ------------------------------------------------------------------------------


def progress_bar(total: int, enabled: bool = True) -> tqdm:
    """One bar over the whole run; sections call `set_description` and `update`."""
    return tqdm(total=total, desc="bench", unit="step", file=sys.stderr, dynamic_ncols=True, disable=not enabled)
