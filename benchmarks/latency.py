"""1. Detector latency: each detector and the full engine, per text, at ~32/128/512 tokens, batch 1 and batched.

Texts are benign (the cost of a clean text is the common case), first-seen on every call (a fresh
nonce, so the engine's cache never answers), and about N tokens long: words are added until the
classifier's tokenizer counts N tokens when the classifier is available, else 3 words per 4 tokens.
"""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

from tqdm import tqdm

from benchmarks.common import DetectorStatus, Sizes, benign_text, median_of_runs, summarize_ms
from safety_filter.engine import Engine


def _token_counter(status: dict[str, DetectorStatus]):  # type: ignore[no-untyped-def]
    clf = status.get("classifier")
    if clf is not None and clf.available and getattr(clf.detector, "_tokenizer", None) is not None:
        tok = clf.detector._tokenizer  # type: ignore[union-attr]
        return lambda text: len(tok.encode(text, add_special_tokens=False).ids), "classifier tokenizer"
    return lambda text: round(len(text.split()) * 4 / 3), "approximate (4 tokens per 3 words)"


def _texts_of(tokens: int, count: int, counter, rng: random.Random, serial: itertools.count) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(count):
        words = max(4, int(tokens * 0.75))
        text = benign_text(rng, words, nonce=f"{next(serial):07d}")
        n = counter(text)
        while n < tokens * 0.95:  # grow to about `tokens`
            words = int(words * max(1.05, tokens / max(1, n)))
            text = benign_text(rng, words, nonce=f"{next(serial):07d}")
            n = counter(text)
        out.append(text)
    return out


def steps(sizes: Sizes, n_subjects: int) -> int:
    return n_subjects * len(sizes.latency_tokens) * len(sizes.latency_batches)


def run(
    status: dict[str, DetectorStatus], engine: Engine, sizes: Sizes, progress: tqdm, seed: int = 1
) -> dict[str, Any]:
    rng = random.Random(seed)
    serial = itertools.count()
    counter, counted_by = _token_counter(status)
    subjects: list[tuple[str, Any]] = []
    for name in ("rules", "classifier", "ncii"):
        s = status.get(name)
        subjects.append((name, s.detector.detect if s is not None and s.available and s.detector is not None else None))
    subjects.append(("engine", lambda texts: engine.check_sync(texts, "prompt")))
    results: dict[str, Any] = {"tokens_counted_by": counted_by, "budget_s": sizes.budget("latency"), "subjects": {}}
    available = [name for name, fn in subjects if fn is not None]
    per_subject = sizes.budget("latency") / max(1, len(available))
    for name, fn in subjects:
        entry: dict[str, Any] = {"available": fn is not None}
        if fn is None:
            entry["error"] = status[name].error if name in status else "not built"
            results["subjects"][name] = entry
            progress.update(len(sizes.latency_tokens) * len(sizes.latency_batches))
            continue
        deadline = time.perf_counter() + per_subject
        fn(_texts_of(min(sizes.latency_tokens), 1, counter, rng, serial))  # warm-up
        cells = []
        for tokens in sizes.latency_tokens:
            for batch in sizes.latency_batches:
                progress.set_description(f"latency {name} {tokens} tok x{batch}")
                if cells and time.perf_counter() > deadline:  # the first cell always runs
                    cells.append(
                        {"tokens": tokens, "batch": batch, "skipped": "over the section's time budget", "cut": True}
                    )
                    progress.update()
                    continue
                runs = []
                lengths = []
                for _ in range(sizes.repeats):
                    if runs and time.perf_counter() > deadline:
                        break  # fewer repeats rather than none
                    per_call: list[float] = []
                    cap = time.perf_counter() + sizes.latency_cell_seconds
                    while not per_call or (
                        len(per_call) < sizes.latency_cell_max and time.perf_counter() < min(cap, deadline)
                    ):
                        texts = _texts_of(tokens, batch, counter, rng, serial)
                        lengths.extend(counter(t) for t in texts)
                        t0 = time.perf_counter()
                        fn(texts)
                        per_call.append(time.perf_counter() - t0)
                    call = summarize_ms(per_call)
                    run_figures = {f"call_{k}": v for k, v in call.items() if k != "n"}
                    run_figures.update({f"per_text_{k}": v / batch for k, v in call.items() if k != "n"})
                    run_figures["calls"] = call["n"]
                    runs.append(run_figures)
                cell = median_of_runs(runs)
                cell["cut"] = len(runs) < sizes.repeats  # fewer repeats: the time budget ran out
                cell.update(
                    {"tokens": tokens, "batch": batch, "measured_tokens_mean": sum(lengths) / max(1, len(lengths))}
                )
                cells.append(cell)
                progress.update()
        entry["cells"] = cells
        results["subjects"][name] = entry
    return results
