"""`NCIIDetector`: finds the signals of a text, scores them (`scoring.py`), reports findings."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from safety_filter import metrics
from safety_filter.detectors.base import BaseDetector
from safety_filter.detectors.ncii.scoring import DEFAULT_CLASSIFIER_THRESHOLD, NCIIScore, evaluate
from safety_filter.detectors.ncii.signals import (
    SIGNAL_FILES,
    STRONG,
    TOKEN,
    WEAK,
    Signal,
    SignalData,
    load_signal_data,
)
from safety_filter.errors import InspectionError
from safety_filter.findings import Category, Finding
from safety_filter.text.language import guess_language
from safety_filter.text.normalize import Normalized
from safety_filter.text.view import lower_fold, model_view

log = logging.getLogger("safety_filter.detectors.ncii")

ClassifierScores = Callable[[Sequence[str]], Sequence[Mapping[str, float]]]
PeopleFinder = Callable[[str, str], Sequence[Any]]

_CAPITALISED_NAME = re.compile(
r"\b[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’]+(?:[ -][A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’]+)+\b")  # noqa: RUF001


def _signals_dir() -> Path:
    from safety_filter.resources import blocklists_dir

    return blocklists_dir() / "_ncii"


def _people_finder_default(*, warm: bool) -> tuple[PeopleFinder | None, str | None]:
    """`safety_filter.pii.find_people` (warmed up when `warm`: presidio + spaCy loaded), or (None, why).

    Without the `pii` extra, or when it fails to warm up, person names come from the
    capitalised-words fallback: said in a warning, never silent.
    """
    from safety_filter import pii

    reason = pii.missing()
    if reason is None and warm:
        try:
            pii.warm_up()
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
    if reason is not None:
        log.warning("ncii: person names by the capitalised-words fallback, not presidio: %s", reason)
        return None, reason
    return pii.find_people, None


def _span_of(item: Any) -> tuple[int, int] | None:
    """Accept presidio RecognizerResult, dicts, (start, end[, ...]) tuples."""
    for a, b in (("start", "end"),):
        if hasattr(item, a) and hasattr(item, b):
            return int(getattr(item, a)), int(getattr(item, b))
        if isinstance(item, Mapping) and a in item and b in item:
            return int(item[a]), int(item[b])
    if isinstance(item, (tuple, list)) and len(item) >= 2 and all(isinstance(x, int) for x in item[:2]):
        return int(item[0]), int(item[1])
    return None


def classifier_scores_from(detector: Any) -> ClassifierScores:
    """Adapt a loaded classifier detector into the callable `NCIIDetector(classifier=...)` takes.

    Uses the detector's ``scores(texts)`` (a mapping per text) when it has one, else the maximum
    finding score per category from ``detect(texts)``. With the engine's verdict cache and the
    classifier's own cache, scoring the same texts twice costs a dictionary lookup.
    """
    scorer = getattr(detector, "scores", None)

    def call(texts: Sequence[str]) -> list[Mapping[str, float]]:
        if callable(scorer):
            return [dict(x) for x in scorer(list(texts))]
        out: list[Mapping[str, float]] = []
        for findings in detector.detect(list(texts)):
            best: dict[str, float] = {}
            for f in findings:
                best[f.category] = max(best.get(f.category, 0.0), f.score)
            out.append(best)
        return out

    call.thresholds = dict(getattr(detector, "thresholds", None) or {})  # type: ignore[attr-defined]
    return call


def _worth_classifying(sigs: list[Signal]) -> bool:
    return any(
        (s.kind == "person" and s.group in ("figure", "relation", "ner", "name_heuristic"))
        or (s.kind == "intent" and s.group not in ("imagery", "intimate_setting"))
        for s in sigs
    )


# --- the detector ----------------------------------------------------------------------------


class NCIIDetector(BaseDetector):
    """See the module docstring for the signals and how they combine.

    ``classifier`` is an optional callable ``texts -> [{"sexual": p, "non_consensual": p}, ...]``.
    ``people_finder`` defaults to ``safety_filter.pii.find_people(text, language)`` when that
    module imports; pass ``False`` to use the lists only. ``use_ner`` = "auto" calls the NER
    model only when an intent signal is present and no strong person was found by the lists
    (the person signal matters only in combination, so this saves its cost on most texts);
    "always" runs it on every text; "never" turns it off. When no NER is available (presidio or
    its spaCy models missing) and ``use_ner`` is not "never", a crude fallback counts two or
    more capitalised words in a row ("Jessica Moore") as a weak person signal.
    """

    name = "ncii"

    def __init__(
        self,
        signals_dir: str | Path | None = None,
        *,
        classifier: ClassifierScores | None = None,
        people_finder: PeopleFinder | bool | None = None,
        use_ner: str = "auto",
        threshold: float = 0.5,
        window: int = 400,
    ) -> None:
        if use_ner not in ("auto", "always", "never"):
            raise ValueError(f"use_ner must be 'auto', 'always' or 'never', got {use_ner!r}")
        self.signals_dir = Path(signals_dir) if signals_dir is not None else None
        self.classifier = classifier
        self._people_finder_arg = people_finder
        self.use_ner = use_ner
        self.threshold = threshold
        self.window = window
        self._data: SignalData | None = None
        self._lock = threading.Lock()
        self.people_finder: PeopleFinder | None = None
        self.ner_error: str | None = None

    # -- loading --

    SIGNAL_FILES = SIGNAL_FILES

    def watched_paths(self) -> list[Path]:
        """The signal files; the engine reloads this detector when one changes."""
        base = self.signals_dir or _signals_dir()
        return [base / name for name in self.SIGNAL_FILES]

    def _classifier_thresholds(self) -> dict[str, float]:
        th = getattr(self.classifier, "thresholds", None) or {}
        categories = (Category.NON_CONSENSUAL.value, Category.SEXUAL.value)
        return {c: float(th.get(c, DEFAULT_CLASSIFIER_THRESHOLD)) for c in categories}

    def load(self) -> None:
        """Read the signal files (raising `SignalFileError` naming the file and key) and pick the NER."""
        with self._lock:
            if self._data is not None:
                return
            data = load_signal_data(self.signals_dir or _signals_dir())
            if self._people_finder_arg is False or self.use_ner == "never":
                self.people_finder = None
            elif callable(self._people_finder_arg):
                self.people_finder = self._people_finder_arg
            else:
                self.people_finder, self.ner_error = _people_finder_default(warm=False)
            self._data = data

    @property
    def data(self) -> SignalData:
        if self._data is None:
            self.load()
        assert self._data is not None
        return self._data

    def warm_up(self) -> None:
        """Load presidio and spaCy now (13 s or so) rather than on the first text that needs them.

        Servers call this at start-up; one-shot commands skip it, since most texts never need it.
        """
        self.load()
        if self.people_finder is not None and self._people_finder_arg is None:
            self.people_finder, self.ner_error = _people_finder_default(warm=True)

    # -- signals --

    def signals(self, text: str, *, ner: bool | None = None, view: Normalized | None = None) -> list[Signal]:
        """Every signal found in `text` (spans index the original text). For tests and audit.

        Lists and patterns read the lowercase fold of the model view, so invisible characters,
        look-alikes, entities and spaced letters do not hide a word from them.
        """
        data = self.data
        view = view if view is not None else model_view(text)
        norm = lower_fold(view.text)
        out: list[Signal] = []

        def add(kind: str, group: str, pattern: str, start: int, end: int, strength: str) -> None:
            a, b = view.original_span(start, end)
            out.append(Signal(kind, group, pattern, a, b, strength, text[a:b]))

        tokens = [(m.start(), m.end(), m.group(0)) for m in TOKEN.finditer(norm)]
        for start, end, label, strength in data.figures.find(tokens):
            add("person", "figure", label, start, end, strength)
        for start, end, label, strength in data.relations.find(tokens):
            add("person", "relation", label, start, end, strength)
        maybe = data.prefilter.candidates(norm)
        for k, (group, pid, rx) in enumerate(data.intents):
            if maybe is not None and k not in maybe:
                continue
            for m in rx.finditer(norm):
                if m.end() == m.start():
                    continue
                if group in ("image_ref", "pronoun"):
                    add("person", group, pid, m.start(), m.end(), WEAK)
                else:
                    add("intent", group, pid, m.start(), m.end(), STRONG)
        for k, framing in enumerate(data.framings, start=len(data.intents)):
            if maybe is not None and k not in maybe:
                continue
            for m in framing.regex.finditer(norm):
                add("framing", framing.group, framing.pattern_id, m.start(), m.end(), STRONG)

        has_intent = any(s.kind == "intent" and s.group not in ("intimate_setting",) for s in out)
        has_strong_person = any(s.kind == "person" and s.strength == STRONG for s in out)
        run_ner = ner if ner is not None else (
            self.people_finder is not None
            and (self.use_ner == "always" or (self.use_ner == "auto" and has_intent and not has_strong_person))
        )
        if run_ner and self.people_finder is not None:
            out.extend(self._ner_people(text, view, out))
        elif self.people_finder is None and self.use_ner != "never" and has_intent and not has_strong_person:
            out.extend(self._name_heuristic(text, view, out))
        return out

    def _name_heuristic(self, text: str, view: Normalized, existing: list[Signal]) -> list[Signal]:
        """Fallback when presidio is unavailable: two or more capitalised words in a row."""
        taken = [(s.start, s.end) for s in existing if s.kind == "person" and s.group in ("figure", "relation")]
        out = []
        for m in _CAPITALISED_NAME.finditer(view.text):
            a, b = view.original_span(m.start(), m.end())
            if any(x < b and a < y for x, y in taken):
                continue
            out.append(Signal("person", "name_heuristic", "capitalised", a, b, WEAK, text[a:b]))
        return out

    def _ner_people(self, text: str, view: Normalized, existing: list[Signal]) -> list[Signal]:
        """PERSON spans from presidio on the model view; a failure raises (the fail mode applies)."""
        try:
            found = self.people_finder(view.text, guess_language(view.text))  # type: ignore[misc]
        except Exception as exc:
            self.ner_error = f"{type(exc).__name__}: {exc}"
            log.error("ncii: person recognition failed: %s", self.ner_error)
            metrics.current().detector_errors.labels(self.name, "ner").inc()
            raise InspectionError(f"ncii: person recognition failed: {self.ner_error}") from exc
        taken = [(s.start, s.end) for s in existing if s.kind == "person" and s.group in ("figure", "relation")]
        # a small NER model calls a capitalised sentence-initial verb a PERSON ("Génère ...");
        # a name cannot be the verb that opens an intent phrase, so such spans are dropped
        for s in existing:
            if s.kind == "intent" and s.group != "intimate_setting":
                first = re.match(r"\S+", text[s.start:s.end])
                taken.append((s.start, s.start + (first.end() if first else 0)))
        out = []
        for item in found or ():
            vspan = _span_of(item)
            if vspan is None or not 0 <= vspan[0] < vspan[1] <= len(view.text):
                continue
            span = view.original_span(*vspan)
            if any(a < span[1] and span[0] < b for a, b in taken):
                continue  # already a figure/relation, or part of an intent phrase
            out.append(Signal("person", "ner", "PERSON", span[0], span[1], WEAK, text[span[0]:span[1]]))
        return out

    # -- combination --

    def score(self, text: str, clf: Mapping[str, float] | None = None, *, sigs: list[Signal] | None = None,
              view: Normalized | None = None) -> NCIIScore:
        """The score of `text` (the rule that fired, contributing signals, framing applied); see `scoring`."""
        view = view if view is not None else model_view(text)
        if sigs is None:
            sigs = self.signals(text, view=view)
        thresholds = self._classifier_thresholds() if clf is not None else None
        return evaluate(sigs, view, lower_fold(view.text), self.data, window=self.window, clf=clf,
                        thresholds=thresholds)

    # -- the Detector protocol --

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]:
        self.load()
        views = [model_view(t) for t in texts]
        all_sigs = [self.signals(t, view=v) for t, v in zip(texts, views, strict=True)]
        clf_by_index: dict[int, Mapping[str, float]] = {}
        if self.classifier is not None and texts:
            # The classifier only changes a verdict next to a person or an intent signal, so it
            # is asked about those texts only (most traffic has neither).
            need = [i for i, sigs in enumerate(all_sigs) if _worth_classifying(sigs)]
            if need:
                try:
                    scored = self.classifier([views[i].text for i in need])
                except Exception as exc:
                    log.error("ncii: classifier failed: %s: %s", type(exc).__name__, exc)
                    metrics.current().detector_errors.labels(self.name, "classifier").inc()
                    raise InspectionError(f"ncii: classifier failed: {type(exc).__name__}: {exc}") from exc
                clf_by_index = {i: scored[k] for k, i in enumerate(need) if k < len(scored)}
        results: list[list[Finding]] = []
        for i, text in enumerate(texts):
            clf = clf_by_index.get(i)
            result = self.score(text, clf, sigs=all_sigs[i], view=views[i])
            score, rule, used, applied = result.score, result.rule, result.signals, result.framing
            if score < self.threshold or not used:
                results.append([])
                continue
            score = min(1.0, score)
            cat = Category.NON_CONSENSUAL.value
            findings = []
            for s in used:
                rid = f"ncii:person:{s.group}" if s.kind == "person" else f"ncii:intent:{s.group}:{s.pattern}"
                findings.append(Finding(cat, score, self.name, (s.start, s.end), rid,
                                        f"{s.kind} ({s.group}): {s.evidence!r}"))
            if clf is not None and rule.startswith("classifier"):
                findings.append(Finding(cat, score, self.name, None, "ncii:classifier",
                                        f"classifier non_consensual={clf.get('non_consensual', 0.0):.2f} "
                                        f"sexual={clf.get('sexual', 0.0):.2f}"))
            note = f"rule {rule}"
            if applied:
                note += f"; lowered by {applied[0].group} framing {applied[0].evidence!r}"
            findings.append(Finding(cat, score, self.name, None, "ncii:combined", note))
            results.append(findings)
        return results
