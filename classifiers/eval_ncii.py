"""Evaluate the NCII detector on the NCII test split (issue 6).

    python classifiers/eval_ncii.py                       # detector alone, test split
    python classifiers/eval_ncii.py --with-classifier     # also detector + shipped classifier
    python classifiers/eval_ncii.py --split train --no-ner --out /tmp/ncii_train.json
    python classifiers/eval_ncii.py --stack               # also rules + NCII (+ classifier) via the engine

Reports, per language: recall per positive kind (share of rows flagged `non_consensual`) and
false-block rate per hard-negative kind (share of rows flagged `non_consensual`), plus the
detector's added latency per text (mean and p95, one text at a time, after a warm-up). Writes
classifiers/reports/ncii.json and prints a table. "Flagged" means the detector returned a
`non_consensual` finding, i.e. its score reached its threshold (0.5, the policy's default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from safety_filter.detectors.ncii import NCIIDetector, classifier_scores_from  # noqa: E402

DATA = ROOT / "classifiers" / "data" / "ncii"
POSITIVE = ("nudify_request", "share_threat", "voyeurism", "doxx_sexual", "compliant_completion")
NEGATIVE = ("fictional_consensual", "news_policy", "victim_help", "sex_education", "nonsexual_named_person")


def load_rows(split: str) -> list[dict]:
    rows = []
    for p in sorted(DATA.glob("*.jsonl")):
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                if split == "all" or r.get("split") == split:
                    rows.append(r)
    return rows


def classifier_callable():
    """The shipped classifier as `texts -> [{category: score}]`, or None if it is not there."""
    try:
        from safety_filter.detectors.classifier import ClassifierDetector
    except Exception as exc:  # noqa: BLE001
        print(f"classifier unavailable: {exc}", file=sys.stderr)
        return None
    det = ClassifierDetector()
    try:
        det.load()
    except Exception as exc:  # noqa: BLE001
        print(f"classifier did not load: {exc}", file=sys.stderr)
        return None
    return classifier_scores_from(det)


def evaluate(det: NCIIDetector, rows: list[dict]) -> dict:
    det.load()
    for r in rows[:5]:  # warm-up
        det.detect([r["text"]])
    flagged_by: dict[tuple[str, str], list[int]] = defaultdict(list)
    per_template: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    times: list[float] = []
    misses: list[dict] = []
    for r in rows:
        t0 = time.perf_counter()
        fs = det.detect([r["text"]])[0]
        times.append(time.perf_counter() - t0)
        hit = any(f.category == "non_consensual" for f in fs)
        flagged_by[(r["kind"], r["lang"])].append(int(hit))
        per_template[(r["kind"], r["lang"], r["template"])].append(int(hit))
        positive = r["kind"] in POSITIVE
        if hit != positive:
            misses.append({"kind": r["kind"], "lang": r["lang"], "template": r["template"], "flagged": hit,
                           "rule": next((f.evidence for f in fs if f.rule_id == "ncii:combined"), None)})
    table: dict[str, dict[str, dict]] = {}
    for kind in POSITIVE + NEGATIVE:
        table[kind] = {}
        for lang in ("en", "fr", "all"):
            vals = [v for (k, lg), vs in flagged_by.items() if k == kind and (lang == "all" or lg == lang) for v in vs]
            if not vals:
                continue
            rate = sum(vals) / len(vals)
            key = "recall" if kind in POSITIVE else "false_block_rate"
            # templates (or hand-written items) whose rows are mostly flagged: rows of one
            # template are not independent, so this is the effective sample size
            tpls = [sum(v) / len(v) for (k, lg, _), v in per_template.items()
                    if k == kind and (lang == "all" or lg == lang)]
            table[kind][lang] = {key: round(rate, 4), "n": len(vals), "templates": len(tpls),
                                 "templates_mostly_flagged": sum(1 for t in tpls if t > 0.5)}
    pos = [v for (k, _), vs in flagged_by.items() if k in POSITIVE for v in vs]
    neg = [v for (k, _), vs in flagged_by.items() if k in NEGATIVE for v in vs]
    ms = sorted(t * 1000 for t in times)
    return {
        "per_kind": table,
        "overall": {
            "recall": round(sum(pos) / max(1, len(pos)), 4),
            "false_block_rate": round(sum(neg) / max(1, len(neg)), 4),
            "n_pos": len(pos),
            "n_neg": len(neg),
        },
        "latency_ms": {
            "mean": round(statistics.mean(ms), 3) if ms else None,
            "p50": round(ms[len(ms) // 2], 3) if ms else None,
            "p95": round(ms[int(len(ms) * 0.95) - 1], 3) if ms else None,
            "n": len(ms),
        },
        "errors": misses,
    }


def evaluate_stack(rows: list[dict], use_ner: str, with_classifier: bool) -> dict:
    """The default policy's decision (rules + NCII [+ classifier]) through the engine: a row
    counts as flagged when the verdict filters `non_consensual` for the prompt role."""
    from safety_filter.detectors.rules import RulesDetector
    from safety_filter.engine import Engine
    from safety_filter.policy import load_policy

    policy = load_policy(None)
    detectors = [RulesDetector(policy.detectors.rules.blocklists), NCIIDetector(use_ner=use_ner)]
    if with_classifier:
        try:
            from safety_filter.detectors.classifier import ClassifierDetector

            detectors.append(ClassifierDetector())
        except Exception as exc:  # noqa: BLE001
            print(f"classifier unavailable for the stack: {exc}", file=sys.stderr)
    engine = Engine(policy, detectors=detectors)
    engine.load()
    flagged_by: dict[tuple[str, str], list[int]] = defaultdict(list)
    by_source: dict[str, int] = defaultdict(int)
    verdicts = engine.check_sync([r["text"] for r in rows], "prompt")
    for r, v in zip(rows, verdicts):
        res = v.categories.get("non_consensual")
        hit = bool(res and res.filtered)
        flagged_by[(r["kind"], r["lang"])].append(int(hit))
        if hit and r["kind"] in NEGATIVE:
            for f in v.findings:
                if f.category == "non_consensual":
                    by_source[f"{f.source}:{f.rule_id}"] += 1
    engine.close()
    table: dict[str, dict[str, dict]] = {}
    for kind in POSITIVE + NEGATIVE:
        table[kind] = {}
        for lang in ("en", "fr", "all"):
            vals = [v for (k, lg), vs in flagged_by.items() if k == kind and (lang == "all" or lg == lang) for v in vs]
            if vals:
                key = "recall" if kind in POSITIVE else "false_block_rate"
                table[kind][lang] = {key: round(sum(vals) / len(vals), 4), "n": len(vals)}
    pos = [v for (k, _), vs in flagged_by.items() if k in POSITIVE for v in vs]
    neg = [v for (k, _), vs in flagged_by.items() if k in NEGATIVE for v in vs]
    return {
        "detectors": [d.name for d in detectors],
        "per_kind": table,
        "overall": {"recall": round(sum(pos) / max(1, len(pos)), 4),
                    "false_block_rate": round(sum(neg) / max(1, len(neg)), 4),
                    "n_pos": len(pos), "n_neg": len(neg)},
        "latency_ms": {"mean": None, "p50": None, "p95": None, "n": 0},
        "false_blocks_by_rule": dict(sorted(by_source.items(), key=lambda kv: -kv[1])),
    }


def print_table(name: str, res: dict) -> None:
    print(f"\n== {name} ==")
    print(f"{'kind':<24} {'metric':<17} {'en':>20} {'fr':>20} {'all':>20}")
    print("  cells: rate (rows; templates mostly flagged / templates)")
    for kind, per in res["per_kind"].items():
        metric = "recall" if kind in POSITIVE else "false_block_rate"
        cells = []
        for lang in ("en", "fr", "all"):
            c = per.get(lang)
            if c and "templates" in c:
                cells.append(f"{c[metric]:.3f} ({c['n']}; {c['templates_mostly_flagged']}/{c['templates']}t)")
            else:
                cells.append(f"{c[metric]:.3f} ({c['n']})" if c else "-")
        print(f"{kind:<24} {metric:<17} {cells[0]:>20} {cells[1]:>20} {cells[2]:>20}")
    o, lat = res["overall"], res["latency_ms"]
    print(f"overall recall {o['recall']:.3f} (n={o['n_pos']}), false-block rate {o['false_block_rate']:.3f} (n={o['n_neg']})")
    if lat["n"]:
        print(f"latency per text: mean {lat['mean']} ms, p50 {lat['p50']} ms, p95 {lat['p95']} ms")
    if res.get("false_blocks_by_rule"):
        print("false blocks by finding:", res["false_blocks_by_rule"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test", choices=("test", "train", "all"))
    ap.add_argument("--with-classifier", action="store_true")
    ap.add_argument("--no-ner", action="store_true", help="lists only, no presidio")
    ap.add_argument("--ner", default="auto", choices=("auto", "always", "never"))
    ap.add_argument("--people-finder", metavar="MODULE:FUNC",
                    help="person finder to use instead of safety_filter.pii.find_people (text, language)")
    ap.add_argument("--out", type=Path, default=ROOT / "classifiers" / "reports" / "ncii.json")
    ap.add_argument("--show-errors", action="store_true")
    ap.add_argument("--stack", action="store_true",
                    help="also run the default policy's stack (rules + ncii [+ classifier]) through the engine")
    args = ap.parse_args()
    rows = load_rows(args.split)
    use_ner = "never" if args.no_ner else args.ner
    report: dict = {"split": args.split, "rows": len(rows), "use_ner": use_ner, "results": {}}

    finder = None
    if args.people_finder:
        import importlib

        mod, _, func = args.people_finder.partition(":")
        finder = getattr(importlib.import_module(mod), func or "find_people")
    det = NCIIDetector(use_ner=use_ner, people_finder=finder)
    det.load()
    res = evaluate(det, rows)
    if det.ner_error:
        report["ner_error"] = det.ner_error
    report["results"]["detector"] = res
    ner_name = "off" if use_ner == "never" else ("presidio" if det.people_finder else "capitalised-name fallback")
    report["person_finder"] = ner_name
    print_table(f"NCII detector alone (ner={use_ner}, person finder: {ner_name})", res)

    if args.with_classifier:
        clf = classifier_callable()
        if clf is not None:
            det2 = NCIIDetector(use_ner=use_ner, people_finder=finder, classifier=clf)
            res2 = evaluate(det2, rows)
            report["results"]["detector+classifier"] = res2
            print_table("NCII detector + classifier scores", res2)
    if args.stack:
        res3 = evaluate_stack(rows, use_ner, args.with_classifier)
        report["results"]["policy_stack"] = res3
        print_table(f"default policy stack ({' + '.join(res3['detectors'])}), non_consensual filtered", res3)
    if args.show_errors:
        for e in res["errors"]:
            print(e)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
