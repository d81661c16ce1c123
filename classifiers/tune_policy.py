"""Choose the default policy's per-category thresholds on the DEV split, never on test.

The thresholds apply to the combined score of the whole detector stack (rule lists + classifier
+ NCII detector, see `safety_filter.policy.decide`), so they are tuned on what the engine
outputs, not on the classifier alone. For each category this prints precision, recall and the
false-flag rate on benign rows at candidate thresholds, and chooses among the thresholds whose
benign false-flag rate stays under `--max-false-flag` (10%: the dev split's "benign" rows
include noisily labelled forum posts and tweets) and that are at least `--min-threshold` (0.5:
the filter never blocks on less than even odds) the lowest one within `--f1-tolerance` (0.01)
of the best F1: when F1 is flat, a miss costs more than a false block.

    python -m classifiers.tune_policy [--dev FILE ...]

The default dev data are the splits' dev rows and the phenomena dev rows (counter-speech,
negation, news, victims' questions...: the safe look-alikes a threshold must not block).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from classifiers import repo_relative
from safety_filter.engine import Engine
from safety_filter.evaluation import row_labels
from safety_filter.findings import CATEGORIES

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, nargs="+",
                        default=[HERE / "data" / "splits" / "dev.jsonl", HERE / "data" / "phenomena" / "dev.jsonl"])
    parser.add_argument("--max-false-flag", type=float, default=0.10)
    parser.add_argument("--min-threshold", type=float, default=0.5)
    parser.add_argument("--f1-tolerance", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=HERE / "reports" / "policy_thresholds.json")
    args = parser.parse_args()

    rows = [json.loads(line) for path in args.dev for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    engine = Engine.from_policy_file()
    scores = {c: [] for c in CATEGORIES}
    for start in range(0, len(rows), 256):
        batch = rows[start : start + 256]
        for verdict in engine.check_sync([r["text"] for r in batch], "prompt"):
            for c in CATEGORIES:
                scores[c].append(verdict.categories[c].score)
    labels = [row_labels(r) for r in rows]
    benign = np.array([not lab for lab in labels])
    chosen = {}
    for c in CATEGORIES:
        s = np.array(scores[c])
        y = np.array([c in lab for lab in labels])
        eligible = []
        print(f"\n{c}: {int(y.sum())} positives, {int(benign.sum())} benign")
        for t in np.round(np.arange(0.3, 0.96, 0.05), 2):
            flagged = s >= t
            tp = int((flagged & y).sum())
            precision = tp / max(int(flagged.sum()), 1)
            recall = tp / max(int(y.sum()), 1)
            f1 = 2 * precision * recall / max(precision + recall, 1e-9)
            false_flag = float((flagged & benign).sum() / max(int(benign.sum()), 1))
            print(f"  t={t:.2f}  P={precision:.3f}  R={recall:.3f}  F1={f1:.3f}  benign false-flag={false_flag:.3f}")
            if false_flag <= args.max_false_flag and t >= args.min_threshold:
                eligible.append((float(t), f1, precision, recall, false_flag))
        if eligible:
            top = max(f1 for _, f1, *_ in eligible)
            best = min(e for e in eligible if e[1] >= top - args.f1_tolerance)  # the lowest threshold: recall
            chosen[c] = dict(zip(("threshold", "f1", "precision", "recall", "benign_false_flag"), best, strict=True))
            print(f"  -> {best[0]:.2f}")
    report = {"dev": [repo_relative(p) for p in args.dev], "rows": len(rows), "max_false_flag": args.max_false_flag,
              "min_threshold": args.min_threshold, "f1_tolerance": args.f1_tolerance, "chosen": chosen}
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
