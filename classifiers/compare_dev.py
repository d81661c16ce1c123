"""Compare model folders on DEV only (never test), to decide whether a retrained model ships.

    python -m classifiers.compare_dev safety_filter/data/model /path/to/candidate [--out FILE]

For each model folder:
1. the classifier alone: per-category AUPRC on classifiers/data/splits/dev.jsonl (all, EN, FR);
2. the default policy's stack with that model (rules + classifier + NCII, the policy's
   thresholds) on classifiers/data/phenomena/dev.jsonl: accuracy by phenomenon, EN and FR, and
   harmful caught / benign falsely blocked / safe look-alikes falsely blocked;
3. prefix stability on benign dev texts (splits and phenomena): the share of texts with a
   word-boundary prefix whose classifier score, in some category, exceeds the full text's by
   more than `--margin` (a streamed answer is checked prefix by prefix, so such a text would
   be cut although the whole of it passes).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOOK_ALIKES = ("victim_help", "history_education", "news", "definition")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def classifier_auprc(model_dir: Path, rows: list[dict]) -> dict:
    from safety_filter.detectors.classifier import ClassifierDetector
    from safety_filter.evaluation import average_precision

    det = ClassifierDetector(model_dir, threads=2)
    det.load()
    scores = det.scores([r["text"] for r in rows])
    out = {}
    for lang in ("all", "en", "fr"):
        idx = [i for i, r in enumerate(rows) if lang == "all" or r["lang"] == lang]
        per = {}
        for c in det.labels:
            y = [1 if c in rows[i]["labels"] else 0 for i in idx]
            ap = average_precision(y, [scores[i][c] for i in idx]) if any(y) else None
            per[c] = None if ap is None else round(float(ap), 4)
        vals = [v for v in per.values() if v is not None]
        per["macro"] = round(float(np.mean(vals)), 4) if vals else None
        out[lang] = per
    return out


def stack_on_phenomena(model_dir: Path, data: Path, report: Path) -> dict:
    """The shipped policy with its classifier swapped for `model_dir`, through `safety-filter eval`."""
    from safety_filter.cli import main as cli

    policy_text = (REPO / "safety_filter" / "data" / "policy.yaml").read_text(encoding="utf-8")
    assert "model: default" in policy_text
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(policy_text.replace("model: default", f"model: {Path(model_dir).resolve()}"), encoding="utf-8")
        assert cli(["eval", str(data), "--policy", str(policy), "--report", str(report)]) == 0
    rep = json.loads(report.read_text(encoding="utf-8"))
    return summarise_phenomena(rep)


def summarise_phenomena(rep: dict) -> dict:
    """Accuracy by phenomenon and language, and the three headline rates per language."""
    by_ph = {}
    agg = {lang: {"harm_n": 0, "harm_caught": 0.0, "ben_n": 0, "ben_blocked": 0.0, "look_n": 0, "look_blocked": 0.0}
           for lang in ("en", "fr")}
    for ph, blk in sorted(rep["by_phenomenon"].items()):
        by_ph[ph] = {"expected": blk["expected"]}
        for lang in ("en", "fr"):
            b = blk.get(lang)
            if not b:
                continue
            by_ph[ph][lang] = {"n": b["n"], "accuracy": round(b["accuracy"], 3)}
            a = agg[lang]
            if blk["expected"] == "block":
                a["harm_n"] += b["n"]; a["harm_caught"] += b["caught_rate"] * b["n"]
            else:
                a["ben_n"] += b["n"]; a["ben_blocked"] += b["false_block_rate"] * b["n"]
                if ph in LOOK_ALIKES:
                    a["look_n"] += b["n"]; a["look_blocked"] += b["false_block_rate"] * b["n"]
    headline = {lang: {"harmful_caught": round(a["harm_caught"] / max(a["harm_n"], 1), 3),
                       "benign_falsely_blocked": round(a["ben_blocked"] / max(a["ben_n"], 1), 3),
                       "look_alikes_falsely_blocked": round(a["look_blocked"] / max(a["look_n"], 1), 3),
                       "n_harmful": a["harm_n"], "n_benign": a["ben_n"], "n_look_alikes": a["look_n"]}
                for lang, a in agg.items()}
    return {"headline": headline, "by_phenomenon": by_ph}


def prefix_stability(model_dir: Path, texts: list[str], margin: float, cuts: int = 6) -> dict:
    """Share of texts with a word-boundary prefix scoring above the whole text + margin (any category)."""
    from safety_filter.detectors.classifier import ClassifierDetector

    det = ClassifierDetector(model_dir, threads=2)
    det.load()
    prefixes, owner = [], []
    for t_i, text in enumerate(texts):
        words = text.split(" ")
        if len(words) < 4:
            continue
        ends = sorted({max(2, round(len(words) * k / cuts)) for k in range(1, cuts)} - {len(words)})
        for e in ends:
            prefixes.append(" ".join(words[:e])); owner.append(t_i)
    full = det.scores(texts)
    pre = det.scores(prefixes)
    unstable = set()
    worst = {}
    for p_i, t_i in enumerate(owner):
        for c, v in pre[p_i].items():
            d = v - full[t_i][c]
            if d > margin:
                unstable.add(t_i)
            worst[c] = max(worst.get(c, 0.0), d)
    checked = len(set(owner))
    return {"texts": len(texts), "texts_with_prefixes": checked, "prefixes": len(prefixes), "margin": margin,
            "unstable_share": round(len(unstable) / max(checked, 1), 4),
            "max_rise_by_category": {c: round(v, 3) for c, v in worst.items()}}


def compare(model_dir: Path, work: Path, prefix_texts: list[str], margin: float) -> dict:
    t = time.time()
    dev = read_jsonl(HERE / "data" / "splits" / "dev.jsonl")
    cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    out = {"model_dir": str(model_dir), "version": cfg.get("version"),
           "splits_dev_auprc": classifier_auprc(model_dir, dev)}
    work.mkdir(parents=True, exist_ok=True)
    out["phenomena_dev_stack"] = stack_on_phenomena(model_dir, HERE / "data" / "phenomena" / "dev.jsonl",
                                                    work / f"phenomena_dev_{cfg.get('version')}.json")
    out["prefix_stability"] = prefix_stability(model_dir, prefix_texts, margin)
    out["seconds"] = round(time.time() - t, 1)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=HERE / "reports" / "dev_comparison.json")
    ap.add_argument("--prefix-texts", type=int, default=400, help="benign dev texts sampled for the prefix check")
    ap.add_argument("--margin", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args(argv)
    benign = [r["text"] for r in read_jsonl(HERE / "data" / "splits" / "dev.jsonl") if not r["labels"]]
    benign += [r["text"] for r in read_jsonl(HERE / "data" / "phenomena" / "dev.jsonl") if not r["labels"]]
    texts = random.Random(a.seed).sample(benign, min(a.prefix_texts, len(benign)))
    prior = json.loads(a.out.read_text(encoding="utf-8")) if a.out.exists() else {}
    for m in a.models:
        res = compare(m, a.out.parent / "dev_comparison_runs", texts, a.margin)
        prior[res["version"]] = res
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(prior, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(json.dumps({k: res[k] for k in ("version", "splits_dev_auprc", "prefix_stability")}, indent=1))
        print(json.dumps(res["phenomena_dev_stack"]["headline"], indent=1))


if __name__ == "__main__":
    main()
