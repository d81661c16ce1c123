"""Rule-list scale benchmark: load time, memory and throughput at 1k / 10k / 100k terms.

    python benchmarks/blocklist_scale.py [--sizes 1000,10000,100000] [--mb 2] [--out FILE.json]

Synthetic terms (invented letter strings and two-word phrases; 10% of them are planted in the
text, one word in 500 by default) are written to a plain-text list and loaded through
`RulesDetector`, so load time covers
parsing, normalising every term and building the Aho-Corasick automaton. Throughput is measured
on synthetic mixed English/French corpora (accents, numbers, punctuation), split into
~600-character texts as the middleware sees them, one clean and one with planted terms:

* `normalize_mb_s`: the normaliser alone (text only, C-level passes);
* `automaton_only_mb_s`: the Aho-Corasick scan of normalised text;
* `match_without_normalisation_mb_s`: scan + whole-word/run checks on pre-normalised clean text;
* `detect_clean_mb_s` / `detect_planted_mb_s`: `RulesDetector.detect` end to end; a text with a
  match also builds the span map back to the original (the slower offset-tracking pass);
* `latency_ms_p50/p99_100_words`: one `detect` call on one 100-word text (planted corpus).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from safety_filter.detectors.rules import DFA_MAX_PATTERNS, RulesDetector
from safety_filter.text.normalize import normalize

WORDS_TEXT = (
    "the of and to in is that for it as with was on be by this are from at or an have not which "
    "but all were when we there can one more if will about up out what so their some time would "
    "le la les des et est une dans pour que qui pas sur plus avec il elle nous vous être été très "
    "déjà où même après français réseau système données privé sécurité modèle requête réponse "
    "python process kill server request model token 2024 1488 3.14 $100 e-mail n'est l'état"
)
WORDS = WORDS_TEXT.split()
ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def synthetic_terms(n: int, rng: random.Random) -> list[str]:
    terms: set[str] = set()
    while len(terms) < n:
        w = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(6, 12)))
        if rng.random() < 0.25:
            w += " " + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(4, 9)))
        terms.add(w)
    return sorted(terms)


def synthetic_texts(total_chars: int, terms: list[str], rng: random.Random, plant_rate: float = 0.002) -> list[str]:
    planted = terms[: max(1, len(terms) // 10)] or ["plain"]
    texts, size = [], 0
    while size < total_chars:
        words = []
        while sum(len(w) + 1 for w in words) < 600:
            words.append(rng.choice(planted) if rng.random() < plant_rate else rng.choice(WORDS))
        t = " ".join(words).capitalize() + "."
        texts.append(t)
        size += len(t)
    return texts


def rss_mb() -> float:
    """Current resident set size (Linux), MB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(n: int, mb: float, rng: random.Random, workdir: Path, plant_rate: float) -> dict:
    terms = synthetic_terms(n, rng)
    path = workdir / f"synthetic_{n}.txt"
    path.write_text("#: category: bench\n" + "\n".join(terms) + "\n", encoding="utf-8")
    gc.collect()
    rss0 = rss_mb()
    t0 = time.perf_counter()
    det = RulesDetector([path])
    det.load()
    load_s = time.perf_counter() - t0
    gc.collect()
    rss_delta = rss_mb() - rss0

    clean = synthetic_texts(int(mb * 1_000_000), terms, rng, 0.0)
    planted = synthetic_texts(int(mb * 1_000_000), terms, rng, plant_rate)
    mb_clean = sum(len(t.encode("utf-8")) for t in clean) / 1e6
    mb_planted = sum(len(t.encode("utf-8")) for t in planted) / 1e6
    compiled = det.compiled

    t0 = time.perf_counter()
    normed = [normalize(t) for t in clean]
    norm_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    for n_ in normed:
        compiled.automaton.find_matches_as_indexes(n_.text, overlapping=True)
    ac_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    for t, n_ in zip(clean, normed, strict=True):
        compiled.match(t, normalized=n_)
    match_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    det.detect(clean)
    detect_clean_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    findings = det.detect(planted)
    detect_planted_s = time.perf_counter() - t0

    sample = [" ".join(t.split()[:100]) for t in planted[:400]]
    lat = []
    for t in sample:
        s = time.perf_counter()
        det.detect([t])
        lat.append((time.perf_counter() - s) * 1000)
    lat.sort()
    return {
        "terms": n,
        "automaton_patterns": len(compiled.patterns),
        "automaton": "DFA" if len(compiled.patterns) <= DFA_MAX_PATTERNS else "contiguous NFA",
        "load_seconds": round(load_s, 3),
        "loaded_rss_mb": round(rss_delta, 1),
        "corpus_mb": round(mb_clean, 2),
        "normalize_mb_s": round(mb_clean / norm_s, 2),
        "automaton_only_mb_s": round(mb_clean / ac_s, 1),
        "match_without_normalisation_mb_s": round(mb_clean / match_s, 1),
        "detect_clean_mb_s": round(mb_clean / detect_clean_s, 2),
        "detect_planted_mb_s": round(mb_planted / detect_planted_s, 2),
        "planted_findings": sum(len(f) for f in findings),
        "latency_ms_p50_100_words": round(statistics.median(lat), 3),
        "latency_ms_p99_100_words": round(lat[int(len(lat) * 0.99) - 1], 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--mb", type=float, default=2.0, help="corpus size per run (MB)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--plant-rate", type=float, default=0.002, help="share of words that are list terms")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "blocklist_scale.json"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            r = bench(n, args.mb, rng, Path(tmp), args.plant_rate)
            print(json.dumps(r), flush=True)
            results.append(r)
    # the shipped lists (EN/FR, with their regex entries behind literal prefilters)
    shipped = RulesDetector()
    t0 = time.perf_counter()
    shipped.load()
    shipped_load = time.perf_counter() - t0
    clean = synthetic_texts(int(args.mb * 1_000_000), [], rng, 0.0)
    mb_clean = sum(len(t.encode("utf-8")) for t in clean) / 1e6
    t0 = time.perf_counter()
    shipped.detect(clean)
    shipped_s = time.perf_counter() - t0
    sample = [" ".join(t.split()[:100]) for t in clean[:400]]
    lat = []
    for t in sample:
        s = time.perf_counter()
        shipped.detect([t])
        lat.append((time.perf_counter() - s) * 1000)
    lat.sort()
    shipped_result = {
        "lists": len(shipped.compiled.lists),
        "entries": shipped.compiled.term_count,
        "regex_entries": len(shipped.compiled.regexes),
        "load_seconds": round(shipped_load, 3),
        "detect_clean_mb_s": round(mb_clean / shipped_s, 2),
        "latency_ms_p50_100_words": round(statistics.median(lat), 3),
    }
    print(json.dumps({"shipped_lists": shipped_result}), flush=True)

    out = {
        "benchmark": "blocklist_scale",
        "matcher": "ahocorasick_rs (MatchKind.Standard, overlapping) on normalised text",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
        "plant_rate": args.plant_rate,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average_during_run": [round(x, 2) for x in os.getloadavg()],
        "note": "2 cores shared with other jobs while measured: throughput varies by 2x between runs",
        "results": results,
        "shipped_lists": shipped_result,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
