"""Render markdown tables for MODEL_CARD.md from classifiers/reports/*_metrics.json.

    python -m classifiers.card_tables test > /tmp/tables.md
    python -m classifiers.card_tables --phenomena classifiers/reports/phenomena_test.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def f(x):
    return "–" if x is None else f"{x:.3f}"


def render(name: str) -> str:
    rep = json.loads((HERE / "reports" / f"{name}_metrics.json").read_text())
    out = [f"Split `{name}` ({rep['n']} rows), model `{rep.get('model_version')}`, thresholds {rep.get('thresholds')}", ""]
    out.append("| slice | category | support | precision | recall | F1 | AUPRC |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    blocks = [("all", rep["overall"])] + [(k, v) for k, v in rep.get("by_lang", {}).items()]
    for lg, blk in blocks:
        for c, m in blk["categories"].items():
            out.append(f"| {lg} | {c} | {m['support']} | {f(m['precision'])} | {f(m['recall'])} | {f(m['f1'])} | {f(m['auprc'])} |")
    out.append("")
    out.append("| slice | benign items | false-block rate | harmful items | block rate |")
    out.append("| --- | ---: | ---: | ---: | ---: |")
    for lg, blk in blocks:
        out.append(f"| {lg} | {blk['benign']['n']} | {f(blk['benign']['false_block_rate'])} | {blk['harmful']['n']} | {f(blk['harmful']['block_rate'])} |")
    if rep.get("benign_by_kind"):
        out.append("")
        out.append("| benign kind (hard negatives) | n | false-block rate |")
        out.append("| --- | ---: | ---: |")
        for k, m in sorted(rep["benign_by_kind"].items()):
            out.append(f"| {k} | {m['n']} | {f(m['false_block_rate'])} |")
    return "\n".join(out)


def render_phenomena(path: str) -> str:
    """Per-phenomenon accuracy, EN and FR, from a `safety-filter eval` report on phenomena rows."""
    from classifiers.compare_dev import summarise_phenomena

    rep = json.loads(Path(path).read_text(encoding="utf-8"))
    summary = summarise_phenomena(rep)
    out = [f"`{rep.get('data')}` ({rep['n']} rows), policy `{rep.get('policy')}`", "",
           "| phenomenon | expected | EN n | EN accuracy | FR n | FR accuracy |",
           "| --- | --- | ---: | ---: | ---: | ---: |"]
    harmful_first = sorted(summary["by_phenomenon"].items(), key=lambda kv: (kv[1]["expected"] != "block", kv[0]))
    for ph, blk in harmful_first:
        en, fr = blk.get("en", {}), blk.get("fr", {})
        out.append(f"| {ph} | {blk['expected']} | {en.get('n', 0)} | {f(en.get('accuracy'))} | {fr.get('n', 0)} | {f(fr.get('accuracy'))} |")
    out += ["", "| language | harmful caught | benign falsely blocked | safe look-alikes falsely blocked |",
            "| --- | ---: | ---: | ---: |"]
    for lang, h in summary["headline"].items():
        out.append(f"| {lang} | {f(h['harmful_caught'])} ({h['n_harmful']}) | {f(h['benign_falsely_blocked'])} ({h['n_benign']}) "
                   f"| {f(h['look_alikes_falsely_blocked'])} ({h['n_look_alikes']}) |")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--phenomena":
        print(render_phenomena(sys.argv[2]))
    else:
        print(render(sys.argv[1] if len(sys.argv) > 1 else "test"))
