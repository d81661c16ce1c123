"""Evaluate the shipped runtime model on a split (or any jsonl) and write classifiers/reports/.

    python -m classifiers.evaluate --split test          # classifiers/data/splits/test.jsonl
    python -m classifiers.evaluate --data FILE.jsonl --name myset

Decisions use the recommended per-category thresholds from config.json (chosen on dev);
"block" here means "any category at or above its threshold" (the classifier alone, no policy).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from classifiers import repo_relative
from safety_filter.detectors.classifier import ClassifierDetector
from safety_filter.evaluation import evaluate, format_report

HERE = Path(__file__).resolve().parent


def finalize_on_dev(model_dir, candidates=(64, 128), split="dev", max_benign_fpr=0.04, extra=()):
    """Fix the runtime settings of a shipped model on dev (never test), through the runtime itself:

    1. window length (tokens, stride = window // 4): best macro AUPRC over `candidates`;
    2. recommended threshold per category: the calibrated score maximising F1 among thresholds
       whose false-flag rate on benign dev items (no label at all) is <= `max_benign_fpr`.
    `extra`: more dev jsonl files (e.g. the phenomena dev rows) tuned on with the split.
    Writes both into config.json and returns them."""
    import numpy as np

    from safety_filter.evaluation import average_precision, pr_curve

    model_dir = Path(model_dir)
    paths = [HERE / "data" / "splits" / f"{split}.jsonl", *map(Path, extra)]
    rows = [json.loads(l) for p in paths for l in p.read_text(encoding="utf-8").splitlines() if l.strip()]
    texts = [r["text"] for r in rows]
    results, all_scores = {}, {}
    for ml in candidates:
        det = ClassifierDetector(model_dir, max_length=ml)
        det.load()
        det.stride = ml // 4
        sc = det.scores(texts)
        all_scores[ml] = sc
        aps = [average_precision([1 if c in r["labels"] else 0 for r in rows], [s[c] for s in sc]) for c in det.labels]
        results[ml] = float(np.mean([a for a in aps if a is not None]))
    best = max(results, key=results.get)
    sc = all_scores[best]
    benign = np.array([not r["labels"] for r in rows])
    thresholds, op = {}, {}
    for c in det.labels:
        y = np.array([1 if c in r["labels"] else 0 for r in rows])
        s_ = np.array([x[c] for x in sc])
        prec, rec, thr = pr_curve(y, s_)
        f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-9)
        fpr = np.array([np.mean(s_[benign] >= t) for t in thr])
        ok = np.where(fpr <= max_benign_fpr)[0]
        i = int(ok[np.argmax(f1[ok])]) if len(ok) else int(np.argmax(f1))
        thresholds[c] = float(round(min(max(thr[i], 0.05), 0.95), 3))
        op[c] = {"precision": round(float(prec[i]), 3), "recall": round(float(rec[i]), 3), "f1": round(float(f1[i]), 3), "benign_false_flag": round(float(fpr[i]), 3)}
    cfg_path = model_dir / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["max_length"], cfg["stride"] = int(best), int(best) // 4
    cfg["thresholds"] = thresholds
    cfg["selection_on_dev"] = {"split": split, "extra": [repo_relative(p) for p in extra], "macro_auprc_by_window": {str(k): round(v, 4) for k, v in results.items()},
                               "threshold_rule": f"max F1 with benign false-flag rate <= {max_benign_fpr}", "operating_points": op}
    cfg_path.write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    print(f"on {split}: window {best} {results}; thresholds {thresholds}; {op}")
    return best, thresholds


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="test")
    ap.add_argument("--data", default="")
    ap.add_argument("--name", default="")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--out-dir", default=str(HERE / "reports"))
    a = ap.parse_args(argv)
    path = Path(a.data) if a.data else HERE / "data" / "splits" / f"{a.split}.jsonl"
    name = a.name or (path.stem if a.data else a.split)
    rows = [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    det = ClassifierDetector(a.model_dir)
    det.load()

    def score_fn(texts, role):
        out = []
        for s in det.scores(texts):
            flagged = {c for c, v in s.items() if v >= det.thresholds.get(c, 0.5)}
            out.append({"scores": s, "filtered": flagged, "action": "block" if flagged else "allow"})
        return out

    t = time.time()
    rep = evaluate(score_fn, rows, categories=det.labels)
    rep["model_version"] = det.version
    rep["thresholds"] = det.thresholds
    rep["data"] = repo_relative(path)
    hard = [r for r in rows if not r.get("labels") and r.get("source") in ("written", "ncii_written")]
    if hard:  # our written hard negatives (counter-speech, negation, history, victims, sex-ed...)
        hrep = evaluate(score_fn, hard, categories=det.labels)
        rep["hard_negatives"] = {"overall": hrep["overall"]["benign"],
                                 "by_lang": {lg: b["benign"] for lg, b in hrep["by_lang"].items()}}
    rep["seconds"] = round(time.time() - t, 1)
    out = Path(a.out_dir) / f"{name}_metrics.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rep, indent=1), encoding="utf-8")
    print(format_report(rep))
    if "hard_negatives" in rep:
        hn = rep["hard_negatives"]
        print("written hard negatives: false-block rate", {k: (v["n"], round(v["false_block_rate"], 3)) for k, v in {"all": hn["overall"], **hn["by_lang"]}.items()})
    print(f"wrote {out}")
    return rep


if __name__ == "__main__":
    main()
