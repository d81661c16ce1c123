"""Build `benchmarks/data/block_streams.jsonl`, the blocked-stream set of the block-lag benchmark.

    python -m benchmarks.make_block_streams [--per-source 30] [--seed 11]

Each row is a completion with a harmful part at a known character offset:
{"id", "category", "source", "text", "offending_start", "offending_end"}. Two halves:

- `test-split`: a harmful item of the held-out test split (`classifiers/data/splits/test.jsonl`,
  never used in training) of a category the default policy blocks (hate, extremism,
  non_consensual), placed between benign filler text (60-600 characters before, 40-200 after);
- `planted list term`: a term of a shipped blocking list between benign filler.

Items are drawn at random (fixed seed), not selected by whether the filter catches them: the
benchmark reports streams it did not block as misses, apart from the lag.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from benchmarks.common import benign_chars
from benchmarks.streaming import planted_items
from safety_filter.detectors.rules import RulesDetector
from safety_filter.evaluation import row_labels

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("hate", "extremism", "non_consensual")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-source", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--test", default=str(ROOT / "classifiers/data/splits/test.jsonl"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/data/block_streams.jsonl"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = [json.loads(line) for line in Path(args.test).read_text(encoding="utf-8").splitlines() if line.strip()]
    harmful = [r for r in rows if row_labels(r) & set(BLOCKED) and 20 <= len(r["text"]) <= 600]
    items = []
    per_category = max(1, args.per_source // len(BLOCKED))
    for category in BLOCKED:
        pool = [r for r in harmful if category in row_labels(r)]
        for row in rng.sample(pool, min(per_category, len(pool))):
            prefix = benign_chars(rng, rng.randint(60, 600)) + " "
            suffix = " " + benign_chars(rng, rng.randint(40, 200))
            text = row["text"].strip()
            items.append(
                {
                    "id": f"test-{len(items)}",
                    "category": category,
                    "source": f"test-split:{row.get('source', '?')}",
                    "lang": row.get("lang"),
                    "text": prefix + text + suffix,
                    "offending_start": len(prefix),
                    "offending_end": len(prefix) + len(text),
                }
            )
    rules = RulesDetector()
    rules.load()
    items.extend(planted_items(rules, args.per_source, rng))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    print(f"wrote {len(items)} streams to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
