"""`safety-filter blocklist ...`: lint, test and explain rule lists before shipping them.

    safety-filter blocklist lint LIST...                      duplicates, entries merged or shadowed
                                                              by the normaliser, over-broad entries
                                                              (common words), bad regexes
    safety-filter blocklist test LIST... --data labelled.jsonl  precision, recall, false positives
    safety-filter blocklist explain TEXT [--list LIST]...     which entries fired where

LIST is a list file, a folder of lists, or `default` (the shipped lists).
Exit codes: 0 ok, 1 lint problems found (or `test` below --min-precision/--min-recall),
2 usage or load error.
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ahocorasick_rs

from safety_filter.detectors.rules import (
    BlocklistError,
    CompiledRules,
    Entry,
    RuleList,
    RulesDetector,
    boundary_ok,
    load_list,
    resolve_lists,
)
from safety_filter.text.normalize import normalize_term, runs_compatible

__all__ = ["LintProblem", "add_blocklist_parser", "common_words", "lint", "main"]

NEGATIVE_LABELS = {"", "safe", "none", "ok", "clean", "negative", "benign", "0", "false"}


# --- shared ----------------------------------------------------------------------------------


def common_words_dir() -> Path:
    from safety_filter.resources import blocklists_dir

    return blocklists_dir() / "_lint"


def common_words(languages: Sequence[str] = ("en", "fr")) -> list[str]:
    """The shipped common-word lists (one word a line, '#' comments)."""
    words: list[str] = []
    for lang in languages:
        path = common_words_dir() / f"common_words_{lang}.txt"
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                words.append(line)
    return words


def _detector(lists: Sequence[str]) -> RulesDetector:
    det = RulesDetector(lists or ("default",))
    det.load()
    return det


# --- lint ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LintProblem:
    path: str
    check: str  # duplicate | merged | shadowed | over-broad | short | regex | load
    message: str
    rule_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "check": self.check, "rule_id": self.rule_id, "message": self.message}

    def __str__(self) -> str:
        who = f" {self.rule_id}:" if self.rule_id else ""
        return f"{self.path}: [{self.check}]{who} {self.message}"


def _entry_label(e: Entry) -> str:
    return f"{e.rule_id} ({e.term!r} -> {e.norm!r})" if e.kind == "term" else f"{e.rule_id} (regex)"


def _shadowing_entry(e: Entry, ac: Any, by_pattern: dict[int, list[Entry]]) -> Entry | None:
    """Another entry of the same category that fires wherever `e` fires, if any."""
    n = len(e.norm)
    left_guaranteed = e.match in ("word", "prefix")  # e itself is preceded by a non-word char
    right_guaranteed = e.match in ("word", "suffix")
    for pid, s, t in ac.find_matches_as_indexes(e.norm, overlapping=True):
        if (s, t) == (0, n):
            continue  # the same normalised string: reported as duplicate/merged within a list
        for other in by_pattern[pid]:
            if other is e or other.category != e.category:
                continue
            if not boundary_ok(other.match, e.norm, s, t):
                continue
            if not runs_compatible(e.runs or {}, s, other.runs or {}, t - s):
                continue
            needs_left = other.match in ("word", "prefix") and e.norm[s].isalnum()
            needs_right = other.match in ("word", "suffix") and e.norm[t - 1].isalnum()
            if (s == 0 and needs_left and not left_guaranteed) or (t == n and needs_right and not right_guaranteed):
                continue
            return other
    return None


Report = Callable[[Entry, str, str], None]  # (entry, check, message)


def lint(paths: Sequence[Path], *, words: Sequence[str] | None = None, max_examples: int = 5) -> list[LintProblem]:
    """Every problem found in the given list files (see the module docstring)."""
    problems: list[LintProblem] = []
    lists = _load_for_lint(paths, problems)

    def report(entry: Entry, check: str, message: str) -> None:
        if check not in entry.lint_ignore:
            problems.append(LintProblem(entry.source, check, message, entry.rule_id))

    _duplicates(lists, report)
    terms = [e for rl in lists for e in rl.entries if e.kind == "term"]
    if terms:
        _shadowed(terms, report)
        words = list(words) if words is not None else common_words()
        if words:
            _over_broad(lists, words, max_examples, report)
    for e in terms:
        if len(e.norm.replace(" ", "")) < 3 and e.match != "word":
            report(e, "short", f"{e.term!r} normalises to {e.norm!r}: too short for {e.match} matching")
        elif len(e.norm.replace(" ", "")) < 2:
            report(e, "short", f"{e.term!r} normalises to {e.norm!r}: a single character")
    for rl in lists:
        for e in (*rl.entries, *rl.allow):
            if e.kind == "regex" and e.on == "normalized" and ("\\p{Lu}" in e.term or "[A-Z" in e.term):
                report(e, "regex", "uppercase class in a regex on normalised (casefolded) text never matches")
    return problems


def _load_for_lint(paths: Sequence[Path], problems: list[LintProblem]) -> list[RuleList]:
    """The lists that load; a file that does not, and each bad entry of one that does, is a problem."""
    lists: list[RuleList] = []
    for path in paths:
        errors: list[BlocklistError] = []
        try:
            rl = load_list(path, errors=errors)
        except BlocklistError as exc:
            problems.append(LintProblem(str(path), "load", str(exc)))
            continue
        for problem in errors:
            check = "regex" if "bad regex:" in str(problem) else "load"
            message = str(problem).removeprefix(f"{path}: ")
            problems.append(LintProblem(str(path), check, message))
        lists.append(rl)
    return lists


def _duplicates(lists: Sequence[RuleList], report: Report) -> None:
    """Duplicates, and entries the normaliser merges into one (same section, same match mode)."""
    for rl in lists:
        for section in (rl.entries, rl.allow):
            seen: dict[tuple[str, str, tuple[Any, ...], str], Entry] = {}
            for e in section:
                key = (e.kind, e.norm if e.kind == "term" else e.term, tuple(sorted((e.runs or {}).items())), e.match)
                first = seen.get(key)
                if first is None:
                    seen[key] = e
                elif first.term == e.term:
                    report(e, "duplicate", f"{e.term!r} is listed twice (entries {first.index} and {e.index})")
                else:
                    report(e, "merged", f"{e.term!r} and {first.term!r} normalise to the same {e.norm!r}: "
                           f"keep one (entry {first.index} already matches every spelling of {e.term!r})")


def _shadowed(terms: Sequence[Entry], report: Report) -> None:
    """Entries another entry of the same category already matches everywhere they do."""
    patterns = sorted({e.norm for e in terms})
    pidx = {p: i for i, p in enumerate(patterns)}
    by_pattern: dict[int, list[Entry]] = defaultdict(list)
    for e in terms:
        by_pattern[pidx[e.norm]].append(e)
    ac = ahocorasick_rs.AhoCorasick(patterns, matchkind=ahocorasick_rs.MatchKind.Standard)
    for e in terms:
        shadow = _shadowing_entry(e, ac, by_pattern)
        if shadow is not None:
            report(e, "shadowed", f"{e.term!r} is redundant: {shadow.rule_id} ({shadow.term!r}) already "
                   f"matches inside every text it matches")


def _over_broad(lists: Sequence[RuleList], words: Sequence[str], max_examples: int, report: Report) -> None:
    """Term entries that fire on common words."""
    blob = "\n".join(words)
    offsets = []
    pos = 0
    for w in words:
        offsets.append(pos)
        pos += len(w) + 1
    compiled = CompiledRules(lists)
    hits: dict[str, list[str]] = defaultdict(list)
    entries_by_id: dict[str, Entry] = {}
    for m in compiled.match(blob):
        if m.entry.kind != "term":
            continue
        k = bisect.bisect_right(offsets, m.span[0]) - 1
        word = words[k]
        if m.rule_id not in entries_by_id:
            entries_by_id[m.rule_id] = m.entry
        if word not in hits[m.rule_id]:
            hits[m.rule_id].append(word)
    for rule_id, ws in hits.items():
        e = entries_by_id[rule_id]
        exact = [w for w in ws if normalize_term(w) == e.norm]
        what = "is itself a common word" if exact and len(ws) == 1 else "matches common words"
        report(e, "over-broad", f"{e.term!r} {what}: {', '.join(ws[:max_examples])}"
               f"{' ...' if len(ws) > max_examples else ''} (narrow it to a phrase, use whole-word matching, "
               f"add an allow exception, or mark it `lint_ignore: [over-broad]` once reviewed)")


def _cmd_lint(args: argparse.Namespace) -> int:
    files, _ = resolve_lists(args.lists)
    if not files:
        print("safety-filter blocklist lint: no list files found", file=sys.stderr)
        return 2
    words = None
    if args.words:
        words = [w.strip() for w in Path(args.words).read_text(encoding="utf-8").splitlines()
                 if w.strip() and not w.startswith("#")]
    problems = lint(files, words=words)
    if args.json:
        print(json.dumps({"files": [str(f) for f in files], "problems": [p.to_dict() for p in problems]},
                         ensure_ascii=False, indent=2))
    else:
        for p in problems:
            print(p)
        counts = Counter(p.check for p in problems)
        summary = ", ".join(f"{n} {c}" for c, n in sorted(counts.items())) or "no problems"
        print(f"{len(files)} list file(s): {summary}", file=sys.stderr)
    return 1 if problems else 0


# --- test ------------------------------------------------------------------------------------


def _labels(obj: dict[str, Any], lineno: int, path: str) -> set[str]:
    if "labels" in obj:
        raw = obj["labels"]
        if raw is None:
            return set()
        if not isinstance(raw, list):
            raise ValueError(f"{path}: line {lineno}: 'labels' must be a list")
        return {str(x) for x in raw if str(x).lower() not in NEGATIVE_LABELS}
    if "label" not in obj:
        raise ValueError(f"{path}: line {lineno}: needs 'label' or 'labels'")
    raw = obj["label"]
    if raw is None or raw is False or raw == 0:
        return set()
    if raw is True or raw == 1:
        return {"*"}
    return set() if str(raw).lower() in NEGATIVE_LABELS else {str(raw)}


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def evaluate(det: RulesDetector, data: Path) -> dict[str, Any]:
    """Precision/recall of the loaded lists on labelled JSON lines, plus the errors."""
    rows: list[tuple[int, str, set[str]]] = []
    with data.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{data}: line {lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise ValueError(f"{data}: line {lineno}: needs a string 'text'")
            rows.append((lineno, obj["text"], _labels(obj, lineno, str(data))))
    tp = fp = fn = tn = 0
    per_cat: dict[str, Counter] = defaultdict(Counter)
    false_positives: list[dict[str, Any]] = []
    false_negatives: list[dict[str, Any]] = []
    for lineno, text, labels in rows:
        findings = det.detect([text])[0]
        predicted = {f.category for f in findings}
        if predicted and labels:
            tp += 1
        elif predicted:
            fp += 1
        elif labels:
            fn += 1
        else:
            tn += 1
        for cat in predicted | (labels - {"*"}):
            hit, want = cat in predicted, cat in labels or "*" in labels
            per_cat[cat]["tp" if hit and want else "fp" if hit else "fn"] += 1
        wrong = [f for f in findings if not labels or ("*" not in labels and f.category not in labels)]
        if wrong:
            false_positives.append({
                "line": lineno, "text": text, "labels": sorted(labels),
                "findings": [{"rule_id": f.rule_id, "category": f.category, "span": list(f.span or ()),
                              "evidence": f.evidence} for f in wrong],
            })
        missed = (labels - {"*"}) - predicted if "*" not in labels else (set() if predicted else {"*"})
        if missed:
            false_negatives.append({"line": lineno, "text": text, "labels": sorted(labels), "missed": sorted(missed)})
    return {
        "lists": [rl.name for rl in det.compiled.lists],
        "version": det.version,
        "texts": len(rows),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "per_category": {
            cat: {**c, "precision": _ratio(c["tp"], c["tp"] + c["fp"]), "recall": _ratio(c["tp"], c["tp"] + c["fn"])}
            for cat, c in sorted(per_cat.items())
        },
        "false_positives": false_positives,
        "false_negatives": false_negatives,
    }


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _cmd_test(args: argparse.Namespace) -> int:
    det = _detector(args.lists)
    report = evaluate(det, Path(args.data))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(f"lists: {', '.join(report['lists'])} ({report['version']})")
        print(f"texts: {report['texts']}  precision: {_fmt(report['precision'])}  recall: {_fmt(report['recall'])}  "
              f"(tp {report['tp']}, fp {report['fp']}, fn {report['fn']}, tn {report['tn']})")
        for cat, c in report["per_category"].items():
            print(f"  {cat}: precision {_fmt(c['precision'])}  recall {_fmt(c['recall'])}  "
                  f"(tp {c.get('tp', 0)}, fp {c.get('fp', 0)}, fn {c.get('fn', 0)})")
        if report["false_positives"]:
            print("false positives:")
            for fp in report["false_positives"]:
                for f in fp["findings"]:
                    print(f"  line {fp['line']}: {f['rule_id']} [{f['category']}] span {tuple(f['span'])} "
                          f"{f['evidence']!r} in {fp['text'][:120]!r}")
        if report["false_negatives"] and args.show_missed:
            print("missed:")
            for fn in report["false_negatives"]:
                print(f"  line {fn['line']}: {', '.join(fn['missed'])}: {fn['text'][:120]!r}")
    failed = (args.min_precision is not None and (report["precision"] or 0.0) < args.min_precision) or \
             (args.min_recall is not None and (report["recall"] or 0.0) < args.min_recall)
    return 1 if failed else 0


# --- explain ---------------------------------------------------------------------------------


def _cmd_explain(args: argparse.Namespace) -> int:
    det = _detector(args.list or ["default"])
    text = args.text if args.text is not None else sys.stdin.read()
    result = det.explain(text)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    print(f"normalised: {result['normalized']!r}")
    if not result["matches"]:
        print("no entry fired")
    for m in result["matches"]:
        where = f"span {tuple(m['span'])} {m['evidence']!r}"
        if m["normalized_span"] is not None:
            where += f" (normalised {tuple(m['normalized_span'])} {m['normalized_evidence']!r})"
        status = f"  ALLOWED by {m['allowed_by']}" if m["allowed_by"] else ""
        print(f"{m['rule_id']} [{m['category']}, {m['match']}, score {m['score']}]: {where}{status}")
    return 0


# --- wiring ----------------------------------------------------------------------------------


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except BlocklistError as exc:
            print(f"safety-filter blocklist: {exc}", file=sys.stderr)
            return 2
        except (OSError, ValueError) as exc:
            print(f"safety-filter blocklist: {exc}", file=sys.stderr)
            return 2

    return run


def add_blocklist_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `blocklist lint|test|explain` on an argparse subparsers object."""
    bl = subparsers.add_parser("blocklist", help="lint, test and explain rule lists",
                               description=__doc__.split("\n\n")[0],
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = bl.add_subparsers(dest="blocklist_command", required=True, metavar="ACTION")

    p = sub.add_parser("lint", help="duplicates, normaliser merges/shadowing, over-broad entries, bad regexes")
    p.add_argument("lists", nargs="+", metavar="LIST", help="list file, folder, or 'default'")
    p.add_argument("--words", metavar="FILE", help="common words to check against (default: the shipped EN/FR lists)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_guard(_cmd_lint))

    p = sub.add_parser("test", help="precision, recall and false positives on labelled JSON lines")
    p.add_argument("lists", nargs="+", metavar="LIST", help="list file, folder, or 'default'")
    p.add_argument("--data", required=True, metavar="JSONL",
                   help='lines {"text": ..., "label": CATEGORY|"safe"} or {"text": ..., "labels": [...]}')
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--show-missed", action="store_true", help="also print the texts no entry caught")
    p.add_argument("--min-precision", type=float, metavar="P", help="exit 1 if precision is below P")
    p.add_argument("--min-recall", type=float, metavar="R", help="exit 1 if recall is below R")
    p.set_defaults(run=_guard(_cmd_test))

    p = sub.add_parser("explain", help="which entries fire on which spans of a text, after normalisation")
    p.add_argument("text", nargs="?", metavar="TEXT", help="the text (stdin when absent)")
    p.add_argument("--list", action="append", metavar="LIST",
                   help="list file or folder (repeatable; default: the shipped lists)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_guard(_cmd_explain))
    return bl


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m safety_filter.blocklist_cli blocklist ...` (the same as `safety-filter blocklist ...`)."""
    parser = argparse.ArgumentParser(prog="safety-filter")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_blocklist_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] != "blocklist" and argv[0] in ("lint", "test", "explain"):
        argv.insert(0, "blocklist")
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
