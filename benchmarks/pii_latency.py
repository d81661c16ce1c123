"""Latency of `safety_filter.pii.redact` (offline presidio + small spaCy models) per 100-word text.

    python benchmarks/pii_latency.py [--runs 30] [--out benchmarks/results/pii_latency.json]

Measures the one-off load (engine + both spaCy models) and then redact() on 100-word English and
French texts containing a name, an email address and a phone number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

EN = ("Yesterday the support team received a message from Peter Jones who wrote to peter.jones@example.com "
      "and asked us to call him back on +1 415 555 0123 about his order. ")
FR = ("Hier l'équipe du support a reçu un message de Marie Dupont qui a écrit depuis marie.dupont@exemple.fr "
      "et demande qu'on la rappelle au 06 12 34 56 78 au sujet de sa commande. ")


def hundred_words(seed: str) -> str:
    words = (seed * 10).split()
    return " ".join(words[:100])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "pii_latency.json"))
    args = ap.parse_args()
    from safety_filter import pii

    t0 = time.perf_counter()
    pii.warm_up()
    load_s = time.perf_counter() - t0
    results = {}
    for lang, seed in (("en", EN), ("fr", FR)):
        text = hundred_words(seed)
        lat = []
        for _ in range(args.runs):
            s = time.perf_counter()
            pii.redact(text, lang)
            lat.append((time.perf_counter() - s) * 1000)
        auto = []
        for _ in range(max(5, args.runs // 3)):
            s = time.perf_counter()
            pii.redact(text)  # language guessed
            auto.append((time.perf_counter() - s) * 1000)
        lat.sort()
        results[lang] = {
            "words": len(text.split()),
            "redact_ms_p50": round(statistics.median(lat), 2),
            "redact_ms_p90": round(lat[int(len(lat) * 0.9) - 1], 2),
            "redact_ms_auto_language_p50": round(statistics.median(auto), 2),
            "example": pii.redact(" ".join(text.split()[:25]), lang),
        }
    out = {
        "benchmark": "pii_latency",
        "spacy_models": pii.SPACY_MODELS,
        "load_seconds": round(load_s, 2),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
        "results": results,
    }
    print(json.dumps(out, indent=2, ensure_ascii=False))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
