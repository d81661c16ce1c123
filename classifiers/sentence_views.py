"""Choose, on DEV only, which texts the classifier also reads sentence by sentence.

Sentence views stop dilution (a harmful sentence after benign text is averaged away in a
mean-pooled window) but a short sentence read alone is noisier than the whole text. This scores
every whole-text window and every sentence window of the dev rows (splits + phenomena) once,
then, for each gate (sentence views only in texts of at least N tokens), reports dev AUPRC per
category and how many harmful phenomena rows caught alone (score >= 0.5) are still caught after
80, 150 or 250 characters of benign text.

    python -m classifiers.sentence_views        # writes classifiers/reports/sentence_views.json
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from classifiers import repo_relative
from safety_filter.detectors.classifier import ClassifierDetector
from safety_filter.evaluation import average_precision

HERE = Path(__file__).resolve().parent
DEV = [HERE / "data" / "splits" / "dev.jsonl", HERE / "data" / "phenomena" / "dev.jsonl"]
PAD = ("The weather report said it would rain all afternoon, so we moved the picnic indoors and played board "
       "games with the neighbours until late. Everyone brought something to share and the children drew pictures. ")
PADS = {n: PAD[:n].rsplit(" ", 1)[0] + ". " for n in (80, 150, 250)}
GATES = [None, 0, 16, 24, 32, 40, 48, 64]  # None: no sentence views


def main() -> None:
    rows = [json.loads(line) for path in DEV for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    harmful_at = [i for i, r in enumerate(rows) if r.get("source") == "phenomena" and r["labels"]][:300]
    harmful = [rows[i] for i in harmful_at]
    texts = [r["text"] for r in rows] + [pad + r["text"] for pad in PADS.values() for r in harmful]
    det = ClassifierDetector()
    det.load()
    seqs: list[list[int]] = []
    index: dict[tuple[int, ...], int] = {}
    windows = []  # (text, is_sentence, text tokens, window)
    for t, text in enumerate(texts):
        enc = det._tokenizer.encode(text, add_special_tokens=False)
        ids, offs = enc.ids, enc.offsets
        ranges = [(False, a, b) for a, b in det._slide(0, len(ids))] if ids else []
        for a, b in det._sentence_ranges(text, offs):  # the runtime's sentence windows, before its gate
            ranges += [(True, x, y) for x, y in det._slide(a, b)]
        for is_sentence, a, b in ranges:
            key = tuple(ids[a:b])
            if key not in index:
                index[key] = len(seqs)
                seqs.append([det.bos, *det.prefix_ids, *ids[a:b], det.eos])
            windows.append((t, is_sentence, len(ids), index[key]))
    probs = det._run(seqs)
    labels = det.labels
    n_dev = len(rows)
    report = {"dev": [repo_relative(p) for p in DEV], "rows": n_dev, "model": det.version, "gates": []}
    for gate in GATES:
        scores = np.zeros((len(texts), len(labels)))
        for t, is_sentence, n_tokens, w in windows:
            if not is_sentence or (gate is not None and n_tokens >= gate):
                scores[t] = np.maximum(scores[t], probs[w])
        auprc = {c: round(average_precision([int(c in r["labels"]) for r in rows], list(scores[:n_dev, j])), 4)
                 for j, c in enumerate(labels)}
        first = [labels.index(r["labels"][0]) for r in harmful]
        alone = np.array([scores[i, j] for i, j in zip(harmful_at, first, strict=True)]) >= 0.5
        caught = {}
        for p, n in enumerate(PADS):
            padded = np.array([scores[n_dev + p * len(harmful) + i, j] for i, j in enumerate(first)]) >= 0.5
            caught[n] = round(float(padded[alone].mean()), 3)
        line = {"min_text_tokens": gate, "auprc": auprc, "macro_auprc": round(float(np.mean(list(auprc.values()))), 4),
                "caught_after_benign_chars": caught}
        report["gates"].append(line)
        print(line, flush=True)
    out = HERE / "reports" / "sentence_views.json"
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
