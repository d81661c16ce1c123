"""2. Cost of each stage per chat turn, the classifier's escalation rate, and plain fp32 inference.

A turn is a 1 KB benign prompt and its 2 KB benign completion, first seen (a fresh nonce for
every stage and every turn, so no cache answers); each turn runs every stage, so drift in the
machine's load hits them alike. Each stage is timed by calling that piece directly on both
texts: text normalisation (`model_view`), the classifier's tokenizer (on the model view, as the
classifier reads it), the rules, classifier and NCII detectors, and the engine (`check_sync`
of the prompt, then of the completion: every detector plus the policy).

Escalation: a classifier with a first stage exposes `stats()`, cumulative counters such as
{"windows": int, "escalated": int}; the rate is escalated / windows over each measurement
(deltas around it), for benign turns and for the harmful texts of the test data; "n/a" without
`stats`. The fp32 comparison times the same windows through the fine-tuned network in plain
fp32 transformers/torch against the shipped ONNX session, in one padded batch (the weights of
the checkpoint `python -m classifiers.train` writes, or, without one, the shipped ONNX file's
weights dequantized); it is skipped, with the reason, when torch, transformers or onnx is
missing.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.common import DetectorStatus, Sizes, benign_chars, summarize_ms
from safety_filter.engine import Engine
from safety_filter.text.view import model_view

PROMPT_CHARS, COMPLETION_CHARS = 1024, 2048
STAGES = ("normalisation", "tokenizer", "rules", "classifier", "ncii", "engine")


def steps(sizes: Sizes) -> int:
    return len(STAGES) + 2


def _detector(status: dict[str, DetectorStatus], name: str) -> Any:
    s = status.get(name)
    return s.detector if s is not None and s.available else None


def _stage_calls(status: dict[str, DetectorStatus], engine: Engine) -> dict[str, Callable[[list[str]], Any] | None]:
    """What each stage runs on one turn [prompt, completion]; None when its piece is not available."""
    clf = _detector(status, "classifier")
    tokenizer = getattr(clf, "_tokenizer", None)
    calls: dict[str, Callable[[list[str]], Any] | None] = {
        "normalisation": lambda turn: [model_view(t) for t in turn],
        "tokenizer": (lambda turn: tokenizer.encode_batch([model_view(t).text for t in turn])) if tokenizer else None,
        "engine": lambda turn: (engine.check_sync(turn[:1], "prompt"), engine.check_sync(turn[1:], "completion")),
    }
    for name in ("rules", "classifier", "ncii"):
        detector = _detector(status, name)
        calls[name] = detector.detect if detector is not None else None
    return {name: calls[name] for name in STAGES}


class Escalation:
    """Deltas of the classifier's cumulative `stats()` counters around a measurement."""

    def __init__(self, classifier: Any) -> None:
        stats = getattr(classifier, "stats", None)
        self.stats = stats if callable(stats) else None
        self.before: dict[str, Any] = {}
        self.delta: dict[str, float] = {}  # summed over every `with` block

    def __enter__(self) -> Escalation:
        self.before = dict(self.stats()) if self.stats else {}
        return self

    def __exit__(self, *exc: object) -> None:
        after = dict(self.stats()) if self.stats else {}
        for key, value in after.items():
            if isinstance(value, int | float):
                self.delta[key] = self.delta.get(key, 0) + value - self.before.get(key, 0)

    def figures(self) -> dict[str, Any]:
        if self.stats is None:
            return {"rate": None, "reason": "the classifier is not available or has no stats() (no first stage)"}
        windows, escalated = self.delta.get("windows", 0), self.delta.get("escalated", 0)
        return {"windows": windows, "escalated": escalated, "rate": escalated / windows if windows else None}


def run(
    status: dict[str, DetectorStatus],
    engine: Engine,
    sizes: Sizes,
    progress: tqdm,
    harmful: Sequence[str],
    fp32_checkpoint: Path | None,
    seed: int = 6,
) -> dict[str, Any]:
    rng = random.Random(seed)
    serial = itertools.count()
    deadline = time.perf_counter() + sizes.budget("stages")
    planned = sizes.stage_turns

    def turn() -> list[str]:
        n = next(serial)
        return [benign_chars(rng, PROMPT_CHARS, f"sp{n}"), benign_chars(rng, COMPLETION_CHARS, f"sc{n}")]

    out: dict[str, Any] = {"turn": "1 KB prompt + 2 KB completion, benign, first seen", "stages": {}}
    clf = _detector(status, "classifier")
    calls = {name: call for name, call in _stage_calls(status, engine).items() if call is not None}
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    escalation = Escalation(clf)
    for call in calls.values():
        call(turn())  # warm-up
    progress.set_description("bench: stages")
    # turn by turn, every stage once: drift in the machine's load hits every stage alike
    while not seconds["normalisation"] or (len(seconds["normalisation"]) < planned and time.perf_counter() < deadline):
        for name, call in calls.items():
            texts = turn()
            with escalation if name == "classifier" else contextlib.nullcontext():
                t0 = time.perf_counter()
                call(texts)
                seconds[name].append(time.perf_counter() - t0)
    for name in STAGES:
        if name not in calls:
            out["stages"][name] = {"available": False}
            continue
        turns = len(seconds[name])
        out["stages"][name] = {
            "available": True,
            "turns": turns,
            "planned_turns": planned,
            **summarize_ms(seconds[name]),
        }
        out["stages"][name]["cut"] = turns < planned
    progress.update(len(STAGES))
    out["escalation"] = {
        "benign turn": escalation.figures(),
        "harmful texts": _harmful_escalation(clf, harmful, deadline),
    }
    progress.update()
    progress.set_description("bench: stages fp32 comparison")
    out["fp32"] = fp32_comparison(clf, turn(), fp32_checkpoint)
    progress.update()
    return out


def _harmful_escalation(clf: Any, texts: Sequence[str], deadline: float) -> dict[str, Any]:
    if clf is None:
        return {"rate": None, "reason": "the classifier is not available"}
    if not texts:
        return {"rate": None, "reason": "no harmful texts (no test data found)"}
    with Escalation(clf) as escalation:
        for start in range(0, len(texts), 8):
            clf.detect(list(texts[start : start + 8]))
            if time.perf_counter() > deadline:
                break
    return {**escalation.figures(), "texts": min(len(texts), start + 8)}


def fp32_comparison(clf: Any, turn: list[str], checkpoint: Path | None) -> dict[str, Any]:
    """ms per turn of the classifier's windows: shipped ONNX session vs plain fp32 torch."""
    if clf is None or not hasattr(clf, "_windows"):
        return {"skipped": "the classifier is not available"}
    try:
        import onnx  # (reads the shipped weights when there is no checkpoint)
        import torch
        import transformers  # noqa: F401  (the network is a transformers BertModel)
    except ImportError as exc:
        return {"skipped": f"{exc.name} is not importable (pip install -e '.[train]')"}
    model, source = _fp32_network(clf, checkpoint, torch)
    model.eval()
    torch.set_num_threads(clf.threads)
    seqs = [ids for text in turn for ids, _ in clf._windows(model_view(text).text)]
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), clf.pad, dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)], mask[row, : len(seq)] = seq, 1

    def onnx() -> None:
        clf._session.run(None, {"input_ids": ids, "attention_mask": mask})

    def fp32() -> None:
        with torch.inference_mode():
            model(torch.from_numpy(ids), torch.from_numpy(mask))

    figures = {"windows": len(seqs), "fp32_weights": source}
    for name, fn in (("onnx_shipped", onnx), ("torch_fp32", fp32)):
        fn()
        figures[f"{name}_ms_per_turn"] = summarize_ms([_timed(fn) for _ in range(3)])["p50_ms"]
    figures["speed_up"] = figures["torch_fp32_ms_per_turn"] / figures["onnx_shipped_ms_per_turn"]
    return figures


def _fp32_network(clf: Any, checkpoint: Path | None, torch: Any) -> tuple[Any, str]:
    """The fine-tuned network in torch fp32: the training checkpoint when there is one, else the
    shipped ONNX file's weights dequantized (the same network; its weights carry int8 rounding)."""
    if checkpoint is not None and checkpoint.is_file():
        from classifiers.train import build_model

        saved = torch.load(checkpoint, weights_only=False)
        model = build_model(saved["keep"], torch)
        model.load_state_dict(saved["state_dict"])
        return model, f"checkpoint {checkpoint}"
    from classifiers.distill import build_network, teacher_state

    state, shapes = teacher_state(clf.model_dir / "model.onnx")
    return (build_network(state, shapes, list(range(shapes["layers"])), len(clf.labels)),
            "the shipped model.onnx, int8 weights dequantized")


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
