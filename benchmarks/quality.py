"""5. Quality against peers on a labelled evaluation set held apart from training.

Metrics come from `safety_filter.evaluation` (the same code as `safety-filter eval`): precision,
recall, F1 and AUPRC per category, false-block rate on benign items. Every system is also scored
on `any` (the item has at least one harmful label; the system flags something), the only
comparison possible for peers that give one score. Hard negatives are benign items of a `kind`
other than plain ones (`normal`, `neither`): offensive-but-not-hateful, counter-speech,
out-of-scope harms, benign photo edits, news, victim help... Latency per text is the time of the
whole scoring pass divided by the number of texts (each system batched as it allows), and p50/p95/p99
of single-text calls on a sample.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.common import Sizes, summarize_ms
from benchmarks.peers import System
from safety_filter.evaluation import evaluate_verdicts, row_labels

PLAIN_BENIGN_KINDS = {"", "normal", "neither", "benign", "none"}


def load_rows(path: Path, limit: int | None, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                if isinstance(row, dict) and isinstance(row.get("text"), str):
                    rows.append(row)
    if limit is not None and len(rows) > limit:
        # stratified by (harmful?, first label, lang) so small runs keep every category
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            labels = sorted(row_labels(row))
            groups.setdefault((labels[0] if labels else "benign", str(row.get("lang"))), []).append(row)
        picked: list[dict[str, Any]] = []
        for key in sorted(groups):
            group = groups[key]
            k = max(1, round(limit * len(group) / len(rows)))
            picked.extend(rng.sample(group, min(k, len(group))))
        rows = picked
    return rows


def steps(n_systems: int) -> int:
    return n_systems


def _any_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "labels": ["any"] if row_labels(r) else []} for r in rows]


def _any_scored(item: dict[str, Any]) -> dict[str, Any]:
    scores = item["scores"]
    return {
        "scores": {"any": max(scores.values(), default=0.0)},
        "filtered": {"any"} if item["filtered"] else set(),
        "action": item["action"],
    }


def run(
    systems: list[System], rows: list[dict[str, Any]], sizes: Sizes, progress: tqdm, data_source: str, seed: int = 5
) -> dict[str, Any]:
    rng = random.Random(seed)
    texts = [str(r["text"]) for r in rows]
    hard = [
        i
        for i, r in enumerate(rows)
        if not row_labels(r) and str(r.get("kind") or "").lower() not in PLAIN_BENIGN_KINDS
    ]
    benign = [i for i, r in enumerate(rows) if not row_labels(r)]
    sample = rng.sample(range(len(rows)), min(sizes.quality_latency_texts, len(rows)))
    out: dict[str, Any] = {
        "data": data_source,
        "n": len(rows),
        "harmful": len(rows) - len(benign),
        "benign": len(benign),
        "hard_negatives": len(hard),
        "label_counts": {},
        "systems": {},
    }
    for r in rows:
        for label in row_labels(r):
            out["label_counts"][label] = out["label_counts"].get(label, 0) + 1
    for system in systems:
        progress.set_description(f"quality {system.name}")
        entry: dict[str, Any] = {"description": system.description, "per_category": system.per_category, **system.extra}
        if system.score is None:
            entry["skipped"] = system.skipped
            out["systems"][system.name] = entry
            progress.update()
            continue
        scored: list[dict[str, Any]] = []
        t0 = time.perf_counter()
        for start in range(0, len(texts), system.batch):
            scored.extend(system.score(texts[start : start + system.batch]))
        total = time.perf_counter() - t0
        single = []
        for i in sample:
            probe = texts[i] + " "  # a variant unseen by any cache
            t1 = time.perf_counter()
            system.score([probe])
            single.append(time.perf_counter() - t1)
        any_report = evaluate_verdicts(_any_rows(rows), [_any_scored(s) for s in scored], categories=["any"])
        entry["any"] = any_report["overall"]["categories"]["any"]
        if system.per_category:
            report = evaluate_verdicts(rows, scored)
            entry["categories"] = report["overall"]["categories"]
            entry["macro"] = report["overall"]["macro"]
            entry["by_lang"] = {
                lang: {"categories": blk["categories"], "macro": blk["macro"], "benign": blk["benign"]}
                for lang, blk in report.get("by_lang", {}).items()
            }
            entry["benign_by_kind"] = report.get("benign_by_kind", {})
        blocked = [s["action"] == "block" for s in scored]
        flagged = [bool(s["filtered"]) for s in scored]
        entry["false_block_rate_benign"] = sum(blocked[i] for i in benign) / len(benign) if benign else None
        entry["false_flag_rate_benign"] = sum(flagged[i] for i in benign) / len(benign) if benign else None
        entry["false_block_rate_hard_negatives"] = sum(blocked[i] for i in hard) / len(hard) if hard else None
        entry["false_flag_rate_hard_negatives"] = sum(flagged[i] for i in hard) / len(hard) if hard else None
        by_kind: dict[str, dict[str, Any]] = {}
        for i in hard:
            kind = str(rows[i].get("kind"))
            k = by_kind.setdefault(kind, {"n": 0, "blocked": 0, "flagged": 0})
            k["n"] += 1
            k["blocked"] += int(blocked[i])
            k["flagged"] += int(flagged[i])
        entry["hard_negatives_by_kind"] = {
            kind: {"n": v["n"], "false_block_rate": v["blocked"] / v["n"], "false_flag_rate": v["flagged"] / v["n"]}
            for kind, v in sorted(by_kind.items())
        }
        entry["latency_per_text_ms"] = total / max(1, len(texts)) * 1000
        entry["single_text"] = summarize_ms(single)
        entry["seconds_total"] = total
        out["systems"][system.name] = entry
        progress.update()
    return out
