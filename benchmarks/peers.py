"""The systems compared in the quality section, each as `score(texts) -> list[scored]`.

`scored` is what `safety_filter.evaluation` accepts: {"scores": {category: score}, "filtered":
set of flagged categories, "action": "block"|"annotate"|"allow"}. A peer that gives one
"toxic/profane" score is scored under the pseudo-category `any` only (any harmful category).

Peers are optional (`pip install safety-filter[bench]`); one that is not installed is reported as
skipped with the reason, never a crash.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from safety_filter.findings import CATEGORIES

ScoreFn = Callable[[Sequence[str]], list[dict[str, Any]]]


@dataclass
class System:
    name: str
    description: str
    per_category: bool  # False: one score, evaluated as "any harmful category"
    score: ScoreFn | None = None
    skipped: str | None = None
    batch: int = 64
    extra: dict[str, Any] = field(default_factory=dict)


def _quiet(fn):  # type: ignore[no-untyped-def]
    def wrapped(*args, **kwargs):  # type: ignore[no-untyped-def]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)

    return wrapped


def engine_system(name: str, description: str, engine: Any) -> System:
    engine.load()  # not timed: loading happens at server start-up

    def score(texts: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for verdict in engine.check_sync(list(texts), "prompt"):
            out.append(
                {
                    "scores": {c: r.score for c, r in verdict.categories.items()},
                    "filtered": {c for c, r in verdict.categories.items() if r.filtered},
                    "action": verdict.action.value,
                }
            )
        return out

    return System(name, description, True, score)


def alt_profanity_check() -> System:
    name = "alt-profanity-check"
    desc = "alt-profanity-check `predict_prob` (linear SVM on English profanity); one score, threshold 0.5"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from profanity_check import predict_prob

            predict_prob(["warm up"])
    except Exception as exc:
        return System(name, desc, False, skipped=f"not installed or failed to load ({type(exc).__name__}: {exc})")

    @_quiet
    def score(texts: Sequence[str]) -> list[dict[str, Any]]:
        probs = predict_prob(list(texts))
        return [
            {
                "scores": {"any": float(p)},
                "filtered": {"any"} if p >= 0.5 else set(),
                "action": "block" if p >= 0.5 else "allow",
            }
            for p in probs
        ]

    return System(name, desc, False, score)


def better_profanity() -> System:
    name = "better-profanity"
    desc = "better-profanity `contains_profanity` with its bundled word list; yes/no, scored 1/0"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from better_profanity import Profanity

            checker = Profanity()
            checker.load_censor_words()
    except Exception as exc:
        return System(name, desc, False, skipped=f"not installed or failed to load ({type(exc).__name__}: {exc})")

    @_quiet
    def score(texts: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for text in texts:
            hit = checker.contains_profanity(text)
            out.append(
                {
                    "scores": {"any": 1.0 if hit else 0.0},
                    "filtered": {"any"} if hit else set(),
                    "action": "block" if hit else "allow",
                }
            )
        return out

    return System(name, desc, False, score, batch=256)


def llm_guard_rules(rules_detector: Any, block_categories: set[str]) -> System:
    """llm-guard BanSubstrings + Regex, one pair per category, loaded with OUR list entries.

    llm-guard's own bundled BanSubstrings lists are about code/security abuse (none for hate,
    extremism or sexual content), so the scanners get the terms and regexes of safety-filter's
    shipped lists, as written (llm-guard applies no normalisation: no accent/leet folding).
    """
    name = "llm-guard rules"
    desc = (
        "llm-guard BanSubstrings (word match, case-insensitive) + Regex, loaded with safety-filter's shipped list "
        "terms and regexes per category (llm-guard bundles no lists for these categories)"
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import logging

            from llm_guard.input_scanners import BanSubstrings, Regex

            try:
                from llm_guard.util import configure_logger

                configure_logger(log_level="ERROR")
            except Exception:  # pragma: no cover - older versions
                pass
            logging.getLogger("llm_guard").setLevel(logging.ERROR)
    except Exception as exc:
        return System(name, desc, True, skipped=f"not installed or failed to import ({type(exc).__name__}: {exc})")
    if rules_detector is None:
        return System(name, desc, True, skipped="our rule lists did not load, so there is nothing to configure it with")
    scanners: dict[str, list[Any]] = {}
    counts: dict[str, dict[str, int]] = {}
    for category in CATEGORIES:
        terms = sorted(
            {
                e.term
                for rl in rules_detector.compiled.lists
                if rl.category == category
                for e in rl.entries
                if e.kind == "term"
            }
        )
        regexes = sorted(
            {
                e.term
                for rl in rules_detector.compiled.lists
                if rl.category == category
                for e in rl.entries
                if e.kind == "regex"
            }
        )
        pair = []
        if terms:
            pair.append(
                BanSubstrings(
                    substrings=terms, match_type="word", case_sensitive=False, redact=False, contains_all=False
                )
            )
        if regexes:
            pair.append(Regex(patterns=[f"(?i){r}" for r in regexes], is_blocked=True, redact=False))
        scanners[category] = pair
        counts[category] = {"terms": len(terms), "regexes": len(regexes)}

    @_quiet
    def score(texts: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for text in texts:
            scores = {}
            for category, pair in scanners.items():
                hit = any(not scanner.scan(text)[1] for scanner in pair)
                scores[category] = 1.0 if hit else 0.0
            filtered = {c for c, s in scores.items() if s >= 1.0}
            action = "block" if filtered & block_categories else ("annotate" if filtered else "allow")
            out.append({"scores": scores, "filtered": filtered, "action": action})
        return out

    return System(name, desc, True, score, batch=256, extra={"entries": counts})
