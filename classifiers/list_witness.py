"""Which rule-list entries decide alone on rows that must not be blocked, and could the model be
their second witness? (issue 14, item 5)

    python -m classifiers.list_witness DATA.jsonl... [--report FILE]

For every entry of the shipped lists that fires on the rows, with the shipped model: how often
it fires on harmful and on benign rows, how often it decides alone on a benign row (its weight
reaches the threshold while the model stays below it), and the model's scores on both. An entry
can be lowered to weight `w` only if every harmful row it fires on keeps a combined score
`1 - (1 - w) * (1 - model)` at or above the threshold: `safe_weight` is the lowest such `w`,
and `benign_freed` counts the benign rows that weight would no longer block (both unset when the
entry fired on no harmful row: nothing shows the model would witness a real use).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from safety_filter.cli import iter_jsonl
from safety_filter.engine import Engine
from safety_filter.evaluation import row_labels


def witness_table(rows: list[dict], engine: Engine) -> dict[str, dict]:
    loaded = engine.load()
    texts = [str(r["text"]) for r in rows]
    findings = [f for k in range(0, len(texts), 256) for f in loaded.detect(texts[k : k + 256])]
    hits: dict[tuple[str, str, float], dict[str, list[float]]] = defaultdict(lambda: {"harmful": [], "benign": []})
    for row, found in zip(rows, findings, strict=True):
        kind = "harmful" if row_labels(row) or row.get("category") else "benign"  # fixtures name a `category`
        for f in found:
            if f.source == "rules" and f.category in engine.policy.categories:
                model = max((g.score for g in found if g.source != "rules" and g.category == f.category), default=0.0)
                hits[f.rule_id or "?", f.category, f.score][kind].append(model)
    table = {}
    for (rule, category, weight), scores in sorted(hits.items()):
        threshold = engine.policy.categories[category].prompt.threshold
        table[rule] = _entry(weight, threshold, scores["harmful"], scores["benign"])
    return dict(sorted(table.items(), key=lambda kv: -kv[1]["decides_alone_on_benign"]))


def _entry(weight: float, threshold: float, harmful: list[float], benign: list[float]) -> dict:
    # lowest weight that keeps every harmful hit at the threshold, given the model's weakest score there
    # (no harmful hit: no evidence that the model would witness a real use, so no safe weight)
    weakest = min(harmful, default=None)
    safe = None if weakest is None else 0.0 if weakest >= threshold else max(0.0, 1 - (1 - threshold) / (1 - weakest))
    freed = None if safe is None else sum(1 - (1 - safe) * (1 - m) < threshold for m in benign)
    return {
        "weight": weight, "threshold": threshold, "harmful": len(harmful), "benign": len(benign),
        "decides_alone_on_benign": sum(weight >= threshold and m < threshold for m in benign),
        "model_on_harmful": _quantiles(harmful), "model_on_benign": _quantiles(benign),
        "safe_weight": None if safe is None else round(safe, 2), "benign_freed": freed,
    }


def _quantiles(scores: list[float]) -> dict[str, float] | None:
    if not scores:
        return None
    s = sorted(scores)
    return {"min": round(s[0], 3), "median": round(s[len(s) // 2], 3), "max": round(s[-1], 3)}


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="+", type=Path, help="labelled JSON lines")
    parser.add_argument("--report", type=Path, help="also write the table as JSON")
    args = parser.parse_args()
    rows = [row for path in args.data for row in iter_jsonl(path)]
    table = witness_table(rows, Engine.from_policy_file())
    print(f"{'entry':<44}{'w':>5}{'harm':>6}{'benign':>7}{'alone':>7}{'min m harm':>11}{'safe w':>8}{'freed':>7}")
    for rule, e in table.items():
        weakest = e["model_on_harmful"]["min"] if e["model_on_harmful"] else "-"
        print(f"{rule:<44}{e['weight']:>5}{e['harmful']:>6}{e['benign']:>7}{e['decides_alone_on_benign']:>7}"
              f"{weakest:>11}{_cell(e['safe_weight']):>8}{_cell(e['benign_freed']):>7}")
    if args.report:
        args.report.write_text(json.dumps({"data": [str(p) for p in args.data], "entries": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
