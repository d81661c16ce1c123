"""The first stage of the classifier cascade: a screen decides which windows the encoder reads.

The encoder costs milliseconds per 128-token window; most traffic is benign. A screen scores
every window more cheaply, and a window goes to the encoder when any category's screen score
reaches that category's escalation threshold, chosen on dev so that at least 99.5% of the
windows the encoder scores at or above `flag_level` are escalated. A window the screen does not
escalate has no classifier finding. Every screen names the encoder version it was distilled
from (`teacher`): it is only used with that encoder. Two kinds, found beside the model:

- `screen.onnx` + `screen.json`: a `StudentScreen`, the encoder cut to a few of its layers and
  distilled on its window scores (`python -m classifiers.distill`). It reads the same token
  windows and uses the encoder's calibration, so its scores estimate the encoder's.
- `screen.npz`: a `Screen`, a hashed token n-gram model (microseconds per window,
  `python -m classifiers.train_screen`). `table` (float16, [vocab + buckets, dim]), `w1`, `b1`,
  `w2`, `b2` (the MLP), `thresholds` (per label), scalars `vocab`, `buckets`, `span`,
  `flag_level`, and the strings `version` and `teacher`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

BIGRAM_PRIME = 1_000_003


class FirstStage(Protocol):
    """What the classifier needs of a screen."""

    flag_level: float
    version: str
    teacher: str

    def escalate(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """True for each window (content token ids, no special tokens) the encoder must read."""
        ...


def positions(content: np.ndarray, vocab: int, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Per token position, its unigram row and its bigram row (with the previous token)."""
    ids = content.astype(np.int64)
    previous = np.concatenate([[vocab - 1], ids[:-1]]) if len(ids) else ids
    return np.minimum(ids, vocab - 1), vocab + (previous * BIGRAM_PRIME + ids) % buckets


class Screen:
    """Scores token windows; `escalate` says which ones the encoder must read.

    The model: each token position is the sum of its unigram and bigram embeddings; spans of
    `span` positions (and the whole window) are averaged, each goes through the MLP, and a
    window's logit per label is the max over its spans, so one harmful sentence is not averaged
    away by the benign text around it.
    """

    def __init__(self, path: str | Path) -> None:
        with np.load(Path(path), allow_pickle=False) as data:
            self.table = data["table"].astype(np.float32)
            self.w1, self.b1 = data["w1"].astype(np.float32), data["b1"].astype(np.float32)
            self.w2, self.b2 = data["w2"].astype(np.float32), data["b2"].astype(np.float32)
            self.thresholds = data["thresholds"].astype(np.float32)
            self.vocab, self.buckets = int(data["vocab"]), int(data["buckets"])
            self.span = int(data["span"])
            self.flag_level = float(data["flag_level"])
            self.version = str(data["version"])
            self.teacher = str(data["teacher"])

    def _pooled(self, content: np.ndarray) -> np.ndarray:
        """The averaged embeddings of each span of the window, and of the whole window."""
        if len(content) == 0:
            return np.zeros((1, self.table.shape[1]), dtype=np.float32)
        uni, bi = positions(content, self.vocab, self.buckets)
        emb = self.table[uni] + self.table[bi]
        whole = emb.mean(axis=0, keepdims=True)
        if len(emb) <= self.span:
            return whole
        sums = np.cumsum(np.vstack([np.zeros((1, emb.shape[1]), dtype=np.float32), emb]), axis=0)
        spans = (sums[self.span :] - sums[: -self.span]) / self.span
        return np.vstack([whole, spans])

    def scores(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """Per window and label, the screen's estimate of the encoder's probability."""
        if not windows:
            return np.zeros((0, len(self.thresholds)), dtype=np.float32)
        pooled = [self._pooled(w) for w in windows]
        owner = np.repeat(np.arange(len(pooled)), [len(x) for x in pooled])
        hidden = np.maximum(np.vstack(pooled) @ self.w1 + self.b1, 0.0)
        logits = hidden @ self.w2 + self.b2
        best = np.full((len(pooled), logits.shape[1]), -np.inf, dtype=np.float32)
        np.maximum.at(best, owner, logits)
        return 1.0 / (1.0 + np.exp(-best))

    def escalate(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """True for each window the encoder must read."""
        return (self.scores(windows) >= self.thresholds).any(axis=1)


class StudentScreen:
    """A shallow copy of the encoder that reads each window first; only the windows it scores
    near a flag go to the full encoder.

    Windows run one at a time, like the encoder's (int8 activations are scaled per batch, so a
    batch would make a window's verdict depend on its batch-mates). Its logits pass through the
    encoder's calibration (`cal_a`, `cal_b`), as in training.
    """

    def __init__(self, folder: str | Path, *, threads: int, bos: int, prefix_ids: Sequence[int], eos: int,
                 cal_a: np.ndarray, cal_b: np.ndarray) -> None:
        import onnxruntime as ort

        folder = Path(folder)
        config: dict[str, Any] = json.loads((folder / "screen.json").read_text(encoding="utf-8"))
        self.version = str(config["version"])
        self.teacher = str(config["teacher"])
        self.flag_level = float(config["flag_level"])
        self.labels = list(config["thresholds"])
        self.thresholds = np.array([float(config["thresholds"][c]) for c in self.labels])
        self._head, self._tail = [bos, *prefix_ids], [eos]
        self.cal_a, self.cal_b = cal_a, cal_b
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(folder / "screen.onnx"), so, providers=["CPUExecutionProvider"])

    def scores(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """Per window and label, the student's estimate of the encoder's probability."""
        out = np.zeros((len(windows), len(self.labels)), dtype=np.float64)
        for i, content in enumerate(windows):
            ids = np.array([[*self._head, *content.tolist(), *self._tail]], dtype=np.int64)
            logits = self._session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
            out[i] = 1.0 / (1.0 + np.exp(-(logits.astype(np.float64) * self.cal_a + self.cal_b)))
        return out

    def escalate(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """True for each window the encoder must read."""
        return np.asarray((self.scores(windows) >= self.thresholds).any(axis=1))
