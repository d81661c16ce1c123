"""Distil the shipped encoder into the cascade's first stage: `python -m classifiers.train_screen`.

The screen (safety_filter/detectors/screen.py) learns the encoder's calibrated scores, window by
window, exactly as the runtime cuts texts: model view, then 128-token windows. Training windows
come from the train split, the phenomena train rows, and concatenations of two to four random
train texts (a harmful sentence amid benign ones, as long turns carry them). The encoder is the
teacher, so no label is needed beyond the split. Escalation thresholds are chosen on dev windows
so that at least `--recall` of the windows the encoder scores >= `--flag-level` are escalated;
the report gives the escalation rates on benign and harmful dev windows.

Needs the `train` extra (torch). Reads splits prepared by `classifiers.prepare` (run here into
the work folder unless `--splits` points at them); never reads a test split.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from safety_filter.detectors.classifier import ClassifierDetector
from safety_filter.detectors.screen import Screen, positions
from safety_filter.text.view import model_view

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VERSION = "screen-2026.12.03"


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def corpus(rows: list[dict], rng: random.Random, joined: int) -> list[tuple[str, bool]]:
    """(text, harmful) pairs: every row, then `joined` concatenations of 2-4 random rows."""
    texts = [(r["text"], bool(r.get("labels"))) for r in rows]
    for _ in range(joined):
        picked = rng.sample(texts, rng.randint(2, 4))
        sep = rng.choice([" ", "\n", "\n\n", ". "])
        texts.append((sep.join(t for t, _ in picked), any(h for _, h in picked)))
    return texts


def windows_and_teacher(detector: ClassifierDetector, texts: list[tuple[str, bool]]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Window content ids as the runtime cuts them, the encoder's probabilities, and harmful flags."""
    detector.load()
    head = 1 + len(detector.prefix_ids)
    contents, seqs, harmful = [], [], []
    for text, is_harmful in texts:
        for ids, _ in detector._windows(model_view(text).text):
            seqs.append(ids)
            contents.append(np.array(ids[head:-1], dtype=np.int64))
            harmful.append(is_harmful)
    started = time.perf_counter()
    probs = detector._run(seqs)
    log(f"teacher: {len(seqs)} windows in {time.perf_counter() - started:.0f} s")
    return contents, probs.astype(np.float32), np.array(harmful)


def cached(path: Path, build):  # type: ignore[no-untyped-def]
    """Teacher outputs are slow to compute: keep them in the work folder between runs."""
    if path.exists():
        data = np.load(path, allow_pickle=False)
        lengths = data["lengths"]
        flat = data["flat"]
        contents = np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []
        return list(contents), data["probs"], data["harmful"]
    contents, probs, harmful = build()
    lengths = np.array([len(c) for c in contents])
    np.savez(path, flat=np.concatenate(contents), lengths=lengths, probs=probs, harmful=harmful)
    return contents, probs, harmful


def teacher_data(model_dir: str | None, datasets: str, splits_arg: str, work: Path, seed: int,
                 threads: int = 2) -> tuple[ClassifierDetector, tuple, tuple]:
    """The encoder to distil (loaded, run as the runtime runs it) and its cached window scores on
    train and dev: `(detector, (contents, probs, harmful) of train, the same of dev)`. Splits are
    prepared into `work`/splits unless `splits_arg` names a folder; no test row is read."""
    work.mkdir(parents=True, exist_ok=True)
    splits = Path(splits_arg) if splits_arg else work / "splits"
    if not splits_arg:
        from classifiers import prepare

        prepare.main(["--datasets", datasets, "--out", str(splits)])
    rng = random.Random(seed)
    test_texts = {r["text"] for r in read_jsonl(HERE / "data" / "splits" / "test.jsonl")}
    test_texts |= {r["text"] for r in read_jsonl(HERE / "data" / "phenomena" / "test.jsonl")}

    def rows(split: str) -> list[dict]:
        found = read_jsonl(splits / f"{split}.jsonl") + read_jsonl(HERE / "data" / "phenomena" / f"{split}.jsonl")
        return [r for r in found if r["text"] not in test_texts]

    train_rows, dev_rows = rows("train"), rows("dev")
    # Training targets may come from batches (faster; int8 activations are scaled per batch, so
    # scores move a little); thresholds are chosen on dev scores exactly as the runtime computes them.
    batched = ClassifierDetector(model_dir, threads=threads, batch_size=32, cascade=False)
    detector = ClassifierDetector(model_dir, threads=threads, cascade=False)
    detector.load()
    tag = detector.version
    log(f"train rows {len(train_rows)}, dev rows {len(dev_rows)}; teacher {tag}")
    tr = cached(work / f"teacher-train-{tag}-{seed}.npz",
                lambda: windows_and_teacher(batched, corpus(train_rows, rng, len(train_rows) // 3)))
    dv = cached(work / f"teacher-dev-{tag}-{seed}.npz",
                lambda: windows_and_teacher(detector, corpus(dev_rows, rng, len(dev_rows) // 3)))
    return detector, tr, dv


def dev_escalation(dev_scores: np.ndarray, thresholds: np.ndarray, dv: tuple, flag_level: float,
                   labels: list[str]) -> dict:
    """How a first stage at `thresholds` does on the dev windows: escalation rates on benign and
    harmful windows, and the share of the encoder's flags (>= `flag_level`) it escalates."""
    escalated = (dev_scores >= thresholds).any(axis=1)
    flagged = (dv[1] >= flag_level).any(axis=1)
    return {
        "escalation_rate_benign_windows": float(escalated[~dv[2]].mean()),
        "escalation_rate_harmful_windows": float(escalated[dv[2]].mean()),
        "escalation_rate_all": float(escalated.mean()),
        "recall_of_encoder_flags": float(escalated[flagged].mean()),
        "recall_of_encoder_flags_by_label": {
            c: float(escalated[dv[1][:, k] >= flag_level].mean()) for k, c in enumerate(labels)
        },
    }


def train(contents, teacher, vocab, buckets, dim, hidden, span, epochs, seed):  # type: ignore[no-untyped-def]
    """The screen's weights, fitted to the teacher's probabilities (soft targets, positives
    weighted up: the screen must not miss what the encoder flags). Mirrors `Screen.scores`."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    labels = teacher.shape[1]
    pad = vocab + buckets  # a zero row for padding
    table = torch.nn.Embedding(vocab + buckets + 1, dim, padding_idx=pad)
    torch.nn.init.normal_(table.weight, std=0.05)
    with torch.no_grad():
        table.weight[pad].zero_()
    mlp = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, labels))
    opt = torch.optim.Adam([*table.parameters(), *mlp.parameters()], lr=3e-3)
    rows = [positions(c, vocab, buckets) for c in contents]
    target = torch.from_numpy(teacher)
    weight = 1.0 + 8.0 * target
    order = np.arange(len(rows))
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        rng.shuffle(order)
        total = 0.0
        for start in range(0, len(order), 128):
            idx = order[start : start + 128]
            longest = max(1, *(len(rows[i][0]) for i in idx))
            uni = np.full((len(idx), longest), pad)
            bi = np.full((len(idx), longest), pad)
            for r, i in enumerate(idx):
                uni[r, : len(rows[i][0])], bi[r, : len(rows[i][1])] = rows[i]
            lengths = torch.tensor([max(1, len(rows[i][0])) for i in idx])
            emb = table(torch.from_numpy(uni)) + table(torch.from_numpy(bi))  # [B, L, dim]
            whole = emb.sum(1) / lengths[:, None]
            logits = mlp(whole)
            if longest > span:
                sums = torch.cat([torch.zeros(len(idx), 1, dim), emb.cumsum(1)], 1)
                spans = (sums[:, span:] - sums[:, :-span]) / span  # [B, L - span + 1, dim]
                valid = torch.arange(spans.shape[1])[None, :] <= (lengths[:, None] - span)
                valid &= (lengths > span)[:, None]
                span_logits = mlp(spans).masked_fill(~valid[..., None], -1e9)
                logits = torch.maximum(logits, span_logits.max(1).values)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target[idx], weight=weight[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                table.weight[pad].zero_()
            total += float(loss.detach()) * len(idx)
        log(f"epoch {epoch + 1}/{epochs}: loss {total / len(order):.4f}")
    return {
        "table": table.weight.detach().numpy()[:pad].astype(np.float16),
        "w1": mlp[0].weight.detach().numpy().T.copy(), "b1": mlp[0].bias.detach().numpy(),
        "w2": mlp[2].weight.detach().numpy().T.copy(), "b2": mlp[2].bias.detach().numpy(),
    }


def choose_thresholds(scores: np.ndarray, teacher: np.ndarray, flag_level: float, recall: float) -> np.ndarray:
    """Per label, the highest threshold that still escalates `recall` of the encoder's flags."""
    out = np.zeros(scores.shape[1], dtype=np.float32)
    for k in range(scores.shape[1]):
        flagged = np.sort(scores[teacher[:, k] >= flag_level, k])
        if len(flagged) == 0:
            out[k] = 0.0  # nothing to learn from: escalate everything for this label
            continue
        allowed_misses = int(np.floor((1.0 - recall) * len(flagged)))
        out[k] = flagged[allowed_misses] * 0.999
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="../shared/datasets", help="labelled datasets, for classifiers.prepare")
    ap.add_argument("--splits", default="", help="prepared splits folder (default: prepare into the work folder)")
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "safety-filter-screen"))
    ap.add_argument("--model-dir", default=None, help="the encoder to distil (default: the shipped model)")
    ap.add_argument("--flag-level", type=float, default=0.25, help="encoder score counted as a flag")
    ap.add_argument("--recall", type=float, default=0.995, help="share of dev flags the screen must escalate")
    ap.add_argument("--buckets", type=int, default=1 << 17)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--span", type=int, default=12, help="tokens per averaged span")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)

    detector, tr, dv = teacher_data(args.model_dir, args.datasets, args.splits, Path(args.workdir), args.seed)
    tag = detector.version
    vocab = detector._tokenizer.get_vocab_size()
    weights = train(tr[0], tr[1], vocab, args.buckets, args.dim, args.hidden, args.span, args.epochs, args.seed)

    out = Path(detector.model_dir) / "screen.npz"
    labels = len(detector.labels)
    np.savez_compressed(out, **weights, thresholds=np.zeros(labels, dtype=np.float32), vocab=vocab,
                        buckets=args.buckets, span=args.span, flag_level=args.flag_level, version=VERSION, teacher=tag)
    screen = Screen(out)
    dev_scores = screen.scores(dv[0])
    screen.thresholds = choose_thresholds(dev_scores, dv[1], args.flag_level, args.recall)
    np.savez_compressed(out, **weights, thresholds=screen.thresholds, vocab=vocab, buckets=args.buckets,
                        span=args.span, flag_level=args.flag_level, version=VERSION, teacher=tag)

    escalated = (dev_scores >= screen.thresholds).any(axis=1)
    at_threshold = {c: dv[1][:, k] >= detector.thresholds.get(c, 0.5) for k, c in enumerate(detector.labels)}
    report = {
        "version": VERSION, "teacher": tag, "flag_level": args.flag_level, "recall_target": args.recall,
        "train_windows": len(tr[0]), "dev_windows": len(dv[0]),
        "thresholds": dict(zip(detector.labels, map(float, screen.thresholds), strict=True)),
        "dev": {
            **dev_escalation(dev_scores, screen.thresholds, dv, args.flag_level, detector.labels),
            "recall_at_model_thresholds_by_label": {
                c: float(escalated[mask].mean()) if mask.any() else None for c, mask in at_threshold.items()
            },
        },
        "bytes": out.stat().st_size,
    }
    (HERE / "reports" / "screen.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
