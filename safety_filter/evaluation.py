"""Evaluation metrics for `safety-filter eval` and the model card (numpy only, no sklearn).

Rows are dicts: {"text", "label": str | "labels": list[str], "role"?, "lang"?, "kind"?}. An
empty label list (or label "benign"/"safe"/"none"/"") means a benign item.

Two entry points:
- `evaluate(score_fn, rows, ...)` where `score_fn(texts, role) -> list[dict]`, each dict holding
  per-category `scores` and optionally `filtered` (set of flagged categories) and `action`;
  plain `{category: score}` dicts are accepted too (decisions then use `thresholds`).
- `evaluate_verdicts(rows, verdicts)` from precomputed `Verdict`s (or their `to_dict()`).
Both return a JSON-serialisable dict; `format_report(report)` renders it as text tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

Scored = tuple[dict[str, float], set[str], str]  # (scores, flagged categories, action)

BENIGN_LABELS = {"", "benign", "safe", "none", "neither", "ok", "clean"}
DEFAULT_CATEGORIES = ("hate", "extremism", "non_consensual", "sexual")
# Optional row fields reported group by group: the phenomenon a row tests (negation,
# counter-speech, a victim asking for help...) and its spelling variant (leet, spaced...).
GROUP_FIELDS = ("phenomenon", "variant")


def row_labels(row: Mapping[str, Any]) -> set[str]:
    if "labels" in row and row["labels"] is not None:
        labs = row["labels"]
        if isinstance(labs, str):
            labs = [labs]
    else:
        labs = [row.get("label", "")]
    return {str(lab).strip() for lab in labs if str(lab).strip().lower() not in BENIGN_LABELS}


def pr_curve(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision/recall at every distinct score threshold (descending).

    Returns (precision, recall, thresholds), where entry i counts items with score >= thresholds[i].
    """
    y = np.asarray(y_true, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if y.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.where(np.diff(s))[0]
    idx = np.r_[distinct, y.size - 1]
    tp = np.cumsum(y)[idx]
    fp = (idx + 1) - tp
    npos = y.sum()
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / npos if npos > 0 else np.zeros_like(tp)
    return precision, recall, s[idx]


def average_precision(y_true: ArrayLike, scores: ArrayLike) -> float | None:
    """AUPRC as average precision: sum over thresholds of (R_i - R_{i-1}) * P_i (sklearn's definition).
    None when there is no positive item."""
    y = np.asarray(y_true, dtype=np.float64)
    if y.size == 0 or y.sum() == 0:
        return None
    p, r, _ = pr_curve(y, scores)
    r_prev = np.r_[0.0, r[:-1]]
    return float(np.sum((r - r_prev) * p))


def prf(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision and recall:
        f1: float | None = 2 * precision * recall / (precision + recall)
    else:
        f1 = 0.0 if precision is not None and recall is not None else None
    return {"precision": precision, "recall": recall, "f1": f1}


def _category_block(y: np.ndarray, s: np.ndarray, d: np.ndarray) -> dict[str, Any]:
    tp = int(np.sum((y == 1) & d))
    fp = int(np.sum((y == 0) & d))
    fn = int(np.sum((y == 1) & ~d))
    out: dict[str, Any] = {"support": int(y.sum()), "n": int(y.size), "tp": tp, "fp": fp, "fn": fn}
    out.update(prf(tp, fp, fn))
    out["auprc"] = average_precision(y, s)
    return out


def _normalise_scored(item: Any, thresholds: Mapping[str, float], default_threshold: float) -> Scored:
    """Accept {"scores", "filtered"?, "action"?}, a Verdict / Verdict.to_dict(), or {cat: score}."""
    if hasattr(item, "categories") and hasattr(item, "action"):
        cats = {k: (float(v.score), bool(v.filtered)) for k, v in item.categories.items()}
        action = getattr(item.action, "value", item.action)
        return {k: v[0] for k, v in cats.items()}, {k for k, v in cats.items() if v[1]}, str(action)
    if isinstance(item, Mapping) and "categories" in item and "action" in item:
        cats = item["categories"]
        scores = {k: float(v["score"]) for k, v in cats.items()}
        return scores, {k for k, v in cats.items() if v.get("filtered")}, str(item["action"])
    if isinstance(item, Mapping) and "scores" in item:
        scores = {k: float(v) for k, v in item["scores"].items()}
        filtered = item.get("filtered")
        if filtered is None:
            filtered = {k for k, v in scores.items() if v >= thresholds.get(k, default_threshold)}
        action = item.get("action") or ("block" if filtered else "allow")
        return scores, set(filtered), str(action)
    scores = {k: float(v) for k, v in dict(item).items()}
    filtered = {k for k, v in scores.items() if v >= thresholds.get(k, default_threshold)}
    return scores, filtered, "block" if filtered else "allow"


def _report(
    rows: Sequence[Mapping[str, Any]], scored: Sequence[Scored], categories: Sequence[str] | None
) -> dict[str, Any]:
    labels = [row_labels(r) for r in rows]
    if categories is None:
        seen: list[str] = list(DEFAULT_CATEGORIES)
        for labs in labels:
            for c in sorted(labs):
                if c not in seen:
                    seen.append(c)
        categories = seen
    langs = sorted({str(r.get("lang") or "all") for r in rows})

    def block(mask: np.ndarray) -> dict[str, Any]:
        res: dict[str, Any] = {"n": int(mask.sum()), "categories": {}}
        for c in categories:
            y = np.array([1 if c in labels[i] else 0 for i in range(len(rows))])[mask]
            s = np.array([scored[i][0].get(c, 0.0) for i in range(len(rows))])[mask]
            d = np.array([c in scored[i][1] for i in range(len(rows))], dtype=bool)[mask]
            if y.sum() == 0 and d.sum() == 0 and mask.sum() == 0:
                continue
            res["categories"][c] = _category_block(y, s, d)
        benign = np.array([not labels[i] for i in range(len(rows))]) & mask
        blocked = np.array([scored[i][2] == "block" for i in range(len(rows))])
        flagged = np.array([bool(scored[i][1]) for i in range(len(rows))])
        harmful = np.array([bool(labels[i]) for i in range(len(rows))]) & mask
        res["benign"] = {
            "n": int(benign.sum()),
            "false_block_rate": float(np.mean(blocked[benign])) if benign.any() else None,
            "false_flag_rate": float(np.mean(flagged[benign])) if benign.any() else None,
        }
        res["harmful"] = {
            "n": int(harmful.sum()),
            "block_rate": float(np.mean(blocked[harmful])) if harmful.any() else None,
            "flag_rate": float(np.mean(flagged[harmful])) if harmful.any() else None,
        }
        f1s = [v["f1"] for v in res["categories"].values() if v["support"] and v["f1"] is not None]
        aps = [v["auprc"] for v in res["categories"].values() if v["auprc"] is not None]
        res["macro"] = {"f1": float(np.mean(f1s)) if f1s else None, "auprc": float(np.mean(aps)) if aps else None}
        return res

    allmask = np.ones(len(rows), dtype=bool)
    report: dict[str, Any] = {"n": len(rows), "overall": block(allmask), "by_lang": {}}
    if len(langs) > 1 or langs != ["all"]:
        for lg in langs:
            report["by_lang"][lg] = block(np.array([str(r.get("lang") or "all") == lg for r in rows]))
    kinds = sorted({str(r["kind"]) for r in rows if r.get("kind") and not row_labels(r)})
    if kinds:
        fb = {}
        for k in kinds:
            m = [i for i, r in enumerate(rows) if r.get("kind") == k and not labels[i]]
            fb[k] = {"n": len(m), "false_block_rate": float(np.mean([scored[i][2] == "block" for i in m])),
                     "false_flag_rate": float(np.mean([bool(scored[i][1]) for i in m]))}
        report["benign_by_kind"] = fb
    for field in GROUP_FIELDS:
        if any(r.get(field) for r in rows):
            report[f"by_{field}"] = _by_group(rows, labels, scored, field)
    return report


def _group_block(
    labels: Sequence[set[str]], scored: Sequence[Scored], idx: Sequence[int]
) -> dict[str, Any]:
    """Accuracy of a group of rows: a harmful row is right when caught (blocked, or one of its
    labelled categories filtered), a benign row when not blocked."""
    harmful = [i for i in idx if labels[i]]
    benign = [i for i in idx if not labels[i]]
    caught = [scored[i][2] == "block" or bool(labels[i] & scored[i][1]) for i in harmful]
    blocked = [scored[i][2] == "block" for i in benign]
    flagged = [bool(scored[i][1]) for i in benign]
    out: dict[str, Any] = {"n": len(idx), "accuracy": (sum(caught) + len(blocked) - sum(blocked)) / len(idx)}
    if harmful:
        out["harmful"] = len(harmful)
        out["caught_rate"] = float(np.mean(caught))
    if benign:
        out["benign"] = len(benign)
        out["false_block_rate"] = float(np.mean(blocked))
        out["false_flag_rate"] = float(np.mean(flagged))
    return out


def _by_group(rows: Sequence[Mapping[str, Any]], labels: Sequence[set[str]], scored: Sequence[Scored],
              field: str) -> dict[str, Any]:
    """Per value of `field` (e.g. the phenomenon a row tests): all languages, then each language."""
    out: dict[str, Any] = {}
    for value in sorted({str(r[field]) for r in rows if r.get(field)}):
        idx = [i for i, r in enumerate(rows) if str(r.get(field) or "") == value]
        kinds = {bool(labels[i]) for i in idx}
        entry: dict[str, Any] = {"expected": "mixed" if len(kinds) > 1 else "block" if True in kinds else "allow",
                                 "all": _group_block(labels, scored, idx)}
        for lang in sorted({str(rows[i].get("lang") or "all") for i in idx}):
            entry[lang] = _group_block(labels, scored, [i for i in idx if str(rows[i].get("lang") or "all") == lang])
        out[value] = entry
    return out


def evaluate(score_fn: Callable[[list[str], str], list[Any]], rows: Iterable[Mapping[str, Any]], *,
             categories: Sequence[str] | None = None, thresholds: Mapping[str, float] | None = None,
             default_threshold: float = 0.5, batch_size: int = 64) -> dict[str, Any]:
    """Score `rows` with `score_fn(texts, role)` (grouped by role, in batches) and compute the report."""
    rows = list(rows)
    thresholds = thresholds or {}
    scored: list[Any] = [None] * len(rows)
    by_role: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_role.setdefault(str(r.get("role") or "user"), []).append(i)
    for role, idx in by_role.items():
        for k in range(0, len(idx), batch_size):
            part = idx[k : k + batch_size]
            res = score_fn([str(rows[i]["text"]) for i in part], role)
            for i, item in zip(part, res, strict=True):
                scored[i] = _normalise_scored(item, thresholds, default_threshold)
    return _report(rows, scored, categories)


def evaluate_verdicts(
    rows: Sequence[Mapping[str, Any]], verdicts: Sequence[Any], *, categories: Sequence[str] | None = None
) -> dict[str, Any]:
    """Report from precomputed verdicts (`Verdict` objects or their `to_dict()`), aligned with rows."""
    if len(rows) != len(verdicts):
        raise ValueError("rows and verdicts differ in length")
    return _report(list(rows), [_normalise_scored(v, {}, 0.5) for v in verdicts], categories)


def _fmt(x: Any) -> str:
    return "  -  " if x is None else f"{x:.3f}"


def format_report(report: Mapping[str, Any]) -> str:
    """Readable tables: per category overall, per language, benign false-block rates."""
    lines: list[str] = []

    def table(title: str, blk: Mapping[str, Any]) -> None:
        lines.append(f"{title} (n={blk['n']})")
        lines.append(f"  {'category':<16}{'support':>8}{'precision':>11}{'recall':>8}{'F1':>8}{'AUPRC':>8}")
        for c, m in blk["categories"].items():
            figures = f"{_fmt(m['precision']):>11}{_fmt(m['recall']):>8}{_fmt(m['f1']):>8}{_fmt(m['auprc']):>8}"
            lines.append(f"  {c:<16}{m['support']:>8}{figures}")
        lines.append(f"  {'macro':<16}{'':>27}{_fmt(blk['macro']['f1']):>8}{_fmt(blk['macro']['auprc']):>8}")
        b = blk["benign"]
        lines.append(f"  benign items: {b['n']}  false-block rate {_fmt(b['false_block_rate'])}"
                     f"  false-flag rate {_fmt(b['false_flag_rate'])}")
        h = blk["harmful"]
        lines.append(f"  harmful items: {h['n']}  block rate {_fmt(h['block_rate'])}  flag rate {_fmt(h['flag_rate'])}")
        lines.append("")

    table("overall", report["overall"])
    for lg, blk in report.get("by_lang", {}).items():
        table(f"lang={lg}", blk)
    if report.get("benign_by_kind"):
        lines.append("benign items by kind (hard negatives)")
        lines.append(f"  {'kind':<30}{'n':>6}{'false-block':>13}{'false-flag':>12}")
        for k, m in sorted(report["benign_by_kind"].items()):
            lines.append(f"  {k:<30}{m['n']:>6}{_fmt(m['false_block_rate']):>13}{_fmt(m['false_flag_rate']):>12}")
    for field in GROUP_FIELDS:
        if report.get(f"by_{field}"):
            lines.extend(["", *group_table(report[f"by_{field}"], field)])
    return "\n".join(lines).rstrip() + "\n"


def group_table(groups: Mapping[str, Any], field: str = "phenomenon") -> list[str]:
    """One line per group: expected outcome, then n / accuracy / false-block rate per language."""
    langs = sorted({k for g in groups.values() for k in g if k not in ("expected", "all")}) or ["all"]
    head = f"  {field:<28}{'expect':>7}" + "".join(f"{lg + ' n':>8}{lg + ' acc':>9}{lg + ' f-blk':>10}" for lg in langs)
    lines = [f"by {field} (acc: harmful caught, benign not blocked; f-blk: benign rows blocked)", head]
    for value, g in groups.items():
        cells = "".join(f"{g[lg]['n']:>8}{_fmt(g[lg]['accuracy']):>9}{_fmt(g[lg].get('false_block_rate')):>10}"
                        if lg in g else f"{'':>8}{'  -  ':>9}{'  -  ':>10}" for lg in langs)
        lines.append(f"  {value:<28}{g['expected']:>7}{cells}")
    return lines
