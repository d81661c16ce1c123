"""The shipped local classifier as a Detector (onnxruntime + tokenizers; no torch at runtime).

Model files live in `safety_filter/data/model/`: `model.onnx` (fine-tuned multilingual-e5-small,
inputs input_ids/attention_mask, output logits per category), `tokenizer.json`, `config.json`
(labels, max_length, stride, prefix, Platt calibration, recommended thresholds, version) and,
when present, the cascade's first stage (`screen.onnx` + `screen.json`, or `screen.npz`: see
`screen.py`). Texts are cut into overlapping token windows, and a text of several sentences (32
tokens or more) is also read sentence by sentence; a category's score is the max over windows
and the finding's span is that window's character range.

The cascade: every window is read first by the screen (see `screen.py`); only the windows it
escalates are run through the encoder. The screen's verdicts and the encoder's
scores of recent windows are cached by token ids, so a stream that re-reads its tail does not
pay twice. A window the screen does not escalate has no finding. The screen never decides alone
where a smaller score would matter: every window of a text a rule list hit is encoded (the
list's second witness, see `policy.decide`), and a screen whose `flag_level` lies above
`flag_floor` (the lowest policy threshold acting on a classifier category) is not used.
`cascade=False`, a model folder without a screen, or a screen distilled from another encoder
version run the encoder on every window.
"""

from __future__ import annotations

import bisect
import importlib.resources
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from safety_filter.detectors.base import BaseDetector
from safety_filter.detectors.screen import FirstStage, Screen, StudentScreen
from safety_filter.findings import Finding, Witness
from safety_filter.lru import LRUCache
from safety_filter.text.sentences import sentence_spans
from safety_filter.text.view import model_view

log = logging.getLogger("safety_filter.classifier")

MIN_SENTENCE_TOKENS = 2  # a sentence of one token ("Hi!" can be two) is not scored on its own
# Sentence views only in texts of at least this many tokens: a shorter text is not diluted much,
# and its sentences read alone are noisier than the whole (dev, classifiers/sentence_views.py:
# macro AUPRC 0.852 without views, 0.829 in every text, 0.842 from 32 tokens, where a harmful
# sentence after 150 benign characters is still caught as often as alone).
MIN_TEXT_TOKENS_FOR_SENTENCES = 32


def default_model_dir() -> Path:
    return Path(str(importlib.resources.files("safety_filter") / "data" / "model"))


class ClassifierDetector(BaseDetector):
    """Scores hate / extremism / non_consensual / sexual with the shipped ONNX model.

    Windows run one at a time by default (`batch_size=1`): the int8 model quantizes activations
    with one scale per batch, so in a batch a window's score moved with its batch-mates (by up to
    0.29 on the obfuscation fixtures). Alone, a window's score is a function of its tokens, which
    the window cache and the stream/JSON twin guarantee rely on. Larger batches are faster for
    offline scoring (training targets), never for the runtime.
    """

    name = "classifier"

    def __init__(self, model_dir: str | Path | None = None, *, threads: int = 2, batch_size: int = 1,
                 score_floor: float | None = None, max_length: int | None = None, cascade: bool = True,
                 window_cache: int = 4096, flag_floor: float | None = None) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.threads = threads
        self.batch_size = batch_size
        self._score_floor = score_floor
        self._max_length = max_length
        self.cascade = cascade
        self.flag_floor = flag_floor
        self.screen: FirstStage | None = None
        self._window_cache: LRUCache[bytes, np.ndarray] = LRUCache(window_cache)
        self._screen_cache: LRUCache[bytes, bool] = LRUCache(window_cache)
        self._counts = {"windows": 0, "escalated": 0, "encoded": 0}
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self.config: dict[str, Any] = {}

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            config = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
            tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            tok.no_padding()
            tok.no_truncation()
            so = ort.SessionOptions()
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(self.model_dir / "model.onnx"), so, providers=["CPUExecutionProvider"])
            self.labels: list[str] = list(config["labels"])
            self.version = str(config.get("version", "unknown"))
            self.max_length = int(self._max_length or config.get("max_length", 128))
            self.stride = int(config.get("stride", self.max_length // 4))
            self.bos = int(config.get("bos_id", 0))
            self.eos = int(config.get("eos_id", 2))
            self.pad = int(config.get("pad_id", 1))
            prefix = str(config.get("prefix", "")).strip()
            self.prefix_ids = tok.encode(prefix, add_special_tokens=False).ids if prefix else []
            cal = config.get("calibration", {})
            self.cal_a = np.array([float(cal.get(c, {}).get("a", 1.0)) for c in self.labels], dtype=np.float64)
            self.cal_b = np.array([float(cal.get(c, {}).get("b", 0.0)) for c in self.labels], dtype=np.float64)
            self.thresholds: dict[str, float] = dict(config.get("thresholds", {}))
            floor = self._score_floor if self._score_floor is not None else config.get("score_floor", 0.05)
            self.score_floor = float(floor)
            self.config = config
            self.screen = self._load_screen() if self.cascade else None
            self._tokenizer = tok
            self._session = session

    def _load_screen(self) -> FirstStage | None:
        screen: FirstStage
        if (self.model_dir / "screen.json").exists():
            screen = StudentScreen(self.model_dir, threads=self.threads, bos=self.bos, prefix_ids=self.prefix_ids,
                                   eos=self.eos, cal_a=self.cal_a, cal_b=self.cal_b)
        elif (self.model_dir / "screen.npz").exists():
            screen = Screen(self.model_dir / "screen.npz")
        else:
            log.info("no screen in %s: the encoder reads every window", self.model_dir)
            return None
        if screen.teacher != self.version:
            log.warning("screen %s was distilled from %s, not %s: the encoder reads every window",
                        screen.version, screen.teacher, self.version)
            return None
        if self.flag_floor is not None and screen.flag_level > self.flag_floor:
            log.warning("screen %s guarantees encoder scores from %.2f on, but the policy acts from %.2f: "
                        "the encoder reads every window", screen.version, screen.flag_level, self.flag_floor)
            return None
        return screen

    def stats(self) -> dict[str, int]:
        """Cumulative window counts: seen, escalated by the screen, run through the encoder."""
        return dict(self._counts)

    # ---------------------------------------------------------------- chunking
    def _windows(self, text: str) -> list[tuple[list[int], tuple[int, int]]]:
        """Token windows of one text, each with its character span: overlapping windows over the
        whole text, and, when it is long enough and has several sentences, each sentence on its
        own, so that a harmful sentence is not diluted by the benign text around it (the score is
        a mean over the window's tokens). A window identical to another is listed once."""
        enc = self._tokenizer.encode(text, add_special_tokens=False)
        ids, offs = enc.ids, enc.offsets
        if not ids:
            return [([self.bos, *self.prefix_ids, self.eos], (0, 0))]
        ranges = self._slide(0, len(ids))
        if len(ids) >= MIN_TEXT_TOKENS_FOR_SENTENCES:
            for a, b in self._sentence_ranges(text, offs):
                ranges.extend(self._slide(a, b))
        out, seen = [], set()
        for a, b in ranges:
            if (a, b) not in seen:
                seen.add((a, b))
                start, end = int(offs[a][0]), int(offs[b - 1][1])
                while start < end and text[start].isspace():  # a token's offsets include the space before it
                    start += 1
                out.append(([self.bos, *self.prefix_ids, *ids[a:b], self.eos], (start, end)))
        return out

    @staticmethod
    def _sentence_ranges(text: str, offs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """Token range [a, b) of each sentence of `text` (`offs`: its tokens' character offsets)
        with at least MIN_SENTENCE_TOKENS tokens; none when the text is one sentence."""
        sentences = sentence_spans(text)
        if len(sentences) < 2:
            return []
        starts = [int(o[0]) for o in offs]
        ends = [int(o[1]) for o in offs]
        out = []
        for s_start, s_end in sentences:
            a, b = bisect.bisect_right(ends, s_start), bisect.bisect_left(starts, s_end)
            if b - a >= MIN_SENTENCE_TOKENS:
                out.append((a, b))
        return out

    def _slide(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Token ranges of at most the model's room covering [start, stop), overlapping by `stride`."""
        room = max(8, self.max_length - 2 - len(self.prefix_ids))
        step = max(1, room - self.stride)
        out = []
        while True:
            end = min(stop, start + room)
            out.append((start, end))
            if end >= stop:
                return out
            start += step

    def _run(self, seqs: list[list[int]]) -> np.ndarray:
        """Calibrated probabilities for token sequences; sorted by length, padded per batch."""
        probs = np.zeros((len(seqs), len(self.labels)), dtype=np.float64)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for k in range(0, len(order), self.batch_size):
            idx = order[k : k + self.batch_size]
            L = max(len(seqs[i]) for i in idx)
            ids = np.full((len(idx), L), self.pad, dtype=np.int64)
            am = np.zeros((len(idx), L), dtype=np.int64)
            for r, i in enumerate(idx):
                ids[r, : len(seqs[i])] = seqs[i]
                am[r, : len(seqs[i])] = 1
            logits = self._session.run(None, {"input_ids": ids, "attention_mask": am})[0].astype(np.float64)
            probs[idx] = 1.0 / (1.0 + np.exp(-(logits * self.cal_a + self.cal_b)))
        return probs

    def _cascade(self, seqs: list[list[int]], forced: Sequence[bool]) -> np.ndarray:
        """Probabilities per window: zero where the screen clears it, cached or encoded elsewhere;
        `forced` windows skip the screen."""
        probs = np.zeros((len(seqs), len(self.labels)), dtype=np.float64)
        keys = [np.asarray(seq, dtype=np.int32).tobytes() for seq in seqs]  # both caches' key
        todo = list(range(len(seqs)))
        screened = [i for i in todo if not forced[i]]
        if self.screen is not None and screened:
            cleared = self._cleared(seqs, keys, screened)
            todo = [i for i in todo if i not in cleared]
        cached = {i: self._window_cache.get(keys[i]) for i in todo}
        missing = [i for i in todo if cached[i] is None]
        fresh = dict(zip(missing, self._run([seqs[i] for i in missing]), strict=True)) if missing else {}
        for i in todo:
            found = cached[i]
            probs[i] = found if found is not None else fresh[i]
        for i, row in fresh.items():
            self._window_cache.put(keys[i], row)
        self._counts["windows"] += len(seqs)
        self._counts["escalated"] += len(todo)
        self._counts["encoded"] += len(missing)
        return probs

    def _cleared(self, seqs: list[list[int]], keys: list[bytes], screened: list[int]) -> set[int]:
        """The windows among `screened` the screen does not escalate (verdicts cached by `keys`)."""
        assert self.screen is not None
        head = 1 + len(self.prefix_ids)
        verdicts = {i: self._screen_cache.get(keys[i]) for i in screened}
        ask = [i for i in screened if verdicts[i] is None]
        if ask:
            escalate = self.screen.escalate([np.asarray(seqs[i][head:-1], dtype=np.int64) for i in ask])
            if len(escalate) != len(ask):
                raise RuntimeError(f"screen gave {len(escalate)} answers for {len(ask)} windows")
            for i, up in zip(ask, escalate, strict=True):
                verdicts[i] = bool(up)
                self._screen_cache.put(keys[i], bool(up))
        return {i for i in screened if not verdicts[i]}

    # ---------------------------------------------------------------- public
    def scores(self, texts: Sequence[str], *, screened: bool = True) -> list[dict[str, float]]:
        """Per-text calibrated score for every category (max over windows); `screened=False`
        encodes every window (what the screen is measured against)."""
        forced = [not screened] * len(texts)
        return [{c: s for c, (s, _) in best.items()} for best in self._best(texts, forced)]

    def _best(self, texts: Sequence[str], forced: Sequence[bool]) -> list[dict[str, tuple[float, tuple[int, int]]]]:
        self.load()
        seqs, owner, spans = [], [], []
        for t_i, text in enumerate(texts):
            for ids, span in self._windows(text or ""):
                seqs.append(ids)
                owner.append(t_i)
                spans.append(span)
        probs = self._cascade(seqs, [forced[t_i] for t_i in owner])
        best: list[dict[str, tuple[float, tuple[int, int]]]] = [{} for _ in texts]
        for w, t_i in enumerate(owner):
            for k, c in enumerate(self.labels):
                p = float(probs[w, k])
                if c not in best[t_i] or p > best[t_i][c][0]:
                    best[t_i][c] = (p, spans[w])
        return best

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]:
        """Findings on the model view of each text (evasions undone), spans in the original."""
        return self.detect_after(texts, [[] for _ in texts])

    def detect_after(self, texts: Sequence[str], earlier: Sequence[Sequence[Finding]]) -> list[list[Finding]]:
        """`detect`, with every window of a text a rule list hit read by the encoder."""
        forced = [any(f.witness is Witness.LIST for f in found) for found in earlier]
        views = [model_view(text or "") for text in texts]
        out: list[list[Finding]] = []
        for view, best in zip(views, self._best([v.text for v in views], forced), strict=True):
            findings = []
            for c, (p, span) in best.items():
                if p >= self.score_floor:
                    threshold = self.thresholds.get(c, 0.5)
                    findings.append(Finding(category=c, score=min(1.0, max(0.0, p)), source=self.name,
                                            span=view.original_span(*span), rule_id=f"classifier:{self.version}",
                                            evidence=f"model score {p:.2f} (recommended threshold {threshold:.2f})"))
            out.append(findings)
        return out
