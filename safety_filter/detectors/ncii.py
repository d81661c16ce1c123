"""Non-consensual intimate content (NCII): sexual imagery of real people made, shared or taken
without their consent.

One keyword list cannot tell a request to strip a coworker's photo from a victim asking how to
get a fake image of herself taken down, or from a request for an ordinary portrait of a named
singer: the same words appear in all three. `NCIIDetector` therefore combines independent
signals, each with its own span, and only reports `non_consensual` when they add up.

Signals (data in ``blocklists/_ncii/``, which the rules detector does not load):

* **real person**: strong when the text names a listed public figure (``public_figures.yaml``)
  or a relation ("my ex", "ma collègue", ``relations.yaml``); weak when presidio finds a PERSON
  (``safety_filter.pii.find_people``: spaCy models from pip, offline; if those are missing, a
  capitalised-words fallback), when a listed name is also a common first name, when the text
  points at an image of someone ("this photo of", "cette photo de", "the girl in this pic"), or
  for a bare third-person pronoun ("make her...").
* **intent** (``intent.yaml``): ``alter`` (undress, nudify, sexual deepfake, remove clothes),
  ``nudity`` (nudes, naked, sextape, intimate photos), ``distribute`` (leak, post, publier)
  next to nudity, ``threat`` (sextortion phrasing), ``voyeur_act`` (upskirt, secretly film),
  ``voyeur_device`` next to an intimate setting, ``doxx`` next to sexual content, and ``sexual``
  (explicit content words), ``imagery`` (photo, video, photorealistic, 8k: used with nudity).
* **framing** (``exclusions.yaml``): victim help, news/policy, education and fiction framing
  scale the score down.
* **classifier** (optional): a callable returning, per text, a mapping with the classifier's
  ``sexual`` and ``non_consensual`` scores (e.g. built from ``ClassifierDetector``).

How they combine (a text's score is the maximum over the rules that apply; signals, framing
included, count together only within ``window`` characters of each other):

===========================================================  =====
rule                                                         score
===========================================================  =====
alter + strong person                                        0.95
alter + weak person (NER name, image reference, pronoun)     0.85
alter alone (no person, no image reference, e.g. a question  0.45
  about what such apps are; not for make_naked)
threat + nudity (sextortion)                                 0.90
distribute + nudity + any person                             0.90
distribute + nudity, no person                               0.65
doxx + (nudity | alter | sexual)                             0.90
voyeur act                                                   0.85
voyeur device + intimate setting                             0.85
nudity + strong person (an image prompt naming a singer)     0.85
nudity + NER/ambiguous name + imagery word (photo, 8k...)    0.70
sexual + strong person (sexual scene about a named person)   0.75
sexual + NER/ambiguous name + "you"/"tu" (user in scene)    0.55
nudity or sexual + weak person                               0.45
classifier: non_consensual >= t and a person (no pronoun)   0.5 + 0.45 * p
classifier: sexual >= t and strong person                    0.70
===========================================================  =====

``t`` is the classifier's own recommended threshold per category (``thresholds`` in the model's
config, carried by `classifier_scores_from`; 0.6 when unknown).

Then the strongest matching framing scales the score: victim help x0.3, news/policy x0.35,
education x0.4, fiction x0.5 (fiction only when the score rests on sexual/nudity words and no
strong person: "write a sex scene about <singer>" stays flagged). Two exceptions:

* a sextortion threat is scaled down only by the victim's own framing ("he is threatening
  to...", "should I pay");
* framing never lowers a *directive*: a contributing alter/distribute/voyeur intent that opens
  its clause, at most after a request prefix and a creation verb (a request that opens with
  "for a news story," or "for research:" and then asks for the image), so framing words cannot
  be used to smuggle a request through.

With a classifier: a confident "not non_consensual" (< 0.05) while a framing matched halves the
score once more, and non_consensual >= 0.9 keeps a framed score at 0.5 or above. A classifier-only
hit (no person, no intent) is left to ``ClassifierDetector``'s own finding; this detector does
not duplicate it.

Every list and pattern reads the lowercase, accent-free fold of the model view
(`safety_filter.text.view`): invisible characters, tags, entities, look-alikes, spaced letters
and leetspeak do not hide a word; presidio and the classifier read the model view itself. Spans
are mapped back to the original text. A failure of the NER or of the classifier is logged,
counted (``safety_filter_detector_errors``) and raised as `InspectionError`, so the policy's fail
mode applies and the engine records the error in the verdict and the audit trail.

When the final score reaches ``threshold`` (default 0.5, the policy's default block threshold),
the text gets one finding per contributing signal (``rule_id`` ``ncii:person:<kind>``,
``ncii:intent:<group>:<pattern>``, ``ncii:classifier``) all with the final score and
``category="non_consensual"``, plus an ``ncii:combined`` finding without a span whose evidence
names the rule that fired and any framing that lowered it. Below the threshold nothing is
reported.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from safety_filter import metrics
from safety_filter.detectors.base import BaseDetector
from safety_filter.errors import InspectionError
from safety_filter.findings import Category, Finding
from safety_filter.text.language import guess_language
from safety_filter.text.normalize import Normalized
from safety_filter.text.view import lower_fold, model_view, view_index

__all__ = ["NCIIDetector", "Signal", "classifier_scores_from"]

log = logging.getLogger(__name__)

ClassifierScores = Callable[[Sequence[str]], Sequence[Mapping[str, float]]]
PeopleFinder = Callable[[str, str], Sequence[Any]]

STRONG, WEAK = "strong", "weak"


@dataclass(frozen=True, slots=True)
class Signal:
    kind: str  # "person" | "intent" | "framing"
    group: str  # person: figure/relation/ner/image_ref/pronoun; intent: alter/nudity/...
    pattern: str
    start: int
    end: int
    strength: str = STRONG
    evidence: str = ""


_CAPITALISED_NAME = re.compile(
r"\b[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’]+(?:[ -][A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’]+)+\b")  # noqa: RUF001
# A directive: the intent phrase opens its clause, at most after a request prefix and a creation
# verb with a few words ("<framing>, <intent verb> <person>", "pls make a <intent noun> of ...").
# Framing words never excuse a directive, so a research/news pretext does not let one through.
_CLAUSE_BOUNDARY = re.compile(r"[.!?;:,\n]")
_DIRECTIVE_PREFIX = re.compile(
    r"^\s*(?:(?:please|pls|plz|can you|could you|would you|will you|can u|i want you to|i need you to|now|"
    r"just|go ahead and|sure|ok|okay|here'?s how to|here is how to|to|stp|svp|s'il te plait|s'il vous plait|"
    r"tu peux|peux-tu|pourrais-tu|vous pouvez|je veux que tu|vas-y|voici comment|pour|allez|bon|hey|yo)\s*,?\s*)*"
    r"(?:(?:make|create|generate|render|produce|draw|edit|turn|give me|show me|send me|do|fais|fait|faites|"
    r"cree|creez|genere|generez|fabrique|montre-moi|envoie-moi|donne-moi)\b(?:\s+\S+){0,3}?)?\s*$")
_DIRECTIVE_GROUPS = ("alter", "distribute", "voyeur_act")
_SECOND_PERSON = re.compile(r"\b(?:you|your|toi|te|t'|tu)\b|\bt'")


# --- data loading ----------------------------------------------------------------------------


def _signals_dir() -> Path:
    from safety_filter.resources import blocklists_dir

    return blocklists_dir() / "_ncii"


def _load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


_TOKEN = re.compile(r"\w+")


def _phrase_key(phrase: str) -> str:
    """A list phrase as its normalised word tokens joined by one space."""
    return " ".join(_TOKEN.findall(lower_fold(model_view(phrase.strip()).text)))


class _PhraseIndex:
    """Longest-match lookup of multi-word phrases over a text's word tokens.

    One dictionary probe per token and phrase length, instead of one regex alternative per
    phrase per position: the public-figure and relation lists cost microseconds per text.
    Spaces, hyphens and apostrophes between words all match each other ("ex-girlfriend",
    "ex girlfriend"; "Charli D'Amelio", "Charli DAmelio" is a separate alias).
    """

    def __init__(self) -> None:
        self._index: dict[str, tuple[str, str]] = {}
        self._first: set[str] = set()
        self._max = 1

    def add(self, phrase: str, label: str, strength: str) -> None:
        key = _phrase_key(phrase)
        if key and key not in self._index:
            self._index[key] = (label, strength)
            self._first.add(key.split(" ", 1)[0])
            self._max = max(self._max, key.count(" ") + 1)

    def find(self, tokens: list[tuple[int, int, str]]) -> list[tuple[int, int, str, str]]:
        out = []
        i, n_tok = 0, len(tokens)
        while i < n_tok:
            if tokens[i][2] not in self._first:
                i += 1
                continue
            for n in range(min(self._max, n_tok - i), 0, -1):
                key = " ".join(t[2] for t in tokens[i:i + n])
                hit = self._index.get(key)
                if hit is not None:
                    out.append((tokens[i][0], tokens[i + n - 1][1], hit[0], hit[1]))
                    i += n
                    break
            else:
                i += 1
        return out


def _people_finder_default(*, warm: bool) -> tuple[PeopleFinder | None, str | None]:
    """`safety_filter.pii.find_people` (warmed up when `warm`: presidio + spaCy loaded), or (None, why)."""
    try:
        from safety_filter import pii
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finder = getattr(pii, "find_people", None)
    if not callable(finder):
        return None, "safety_filter.pii has no find_people"
    warm_up = getattr(pii, "warm_up", None)
    if warm and callable(warm_up):
        try:
            warm_up()
        except Exception as exc:
            return None, f"{type(exc).__name__}: {exc}"
    return finder, None


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


def _is_directive(norm: str, start: int) -> bool:
    clause_start = 0
    for m in _CLAUSE_BOUNDARY.finditer(norm, max(0, start - 120), start):
        clause_start = m.end()
    if start - clause_start > 120:
        return False
    return bool(_DIRECTIVE_PREFIX.match(norm[clause_start:start]))


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
        self._loaded = False
        self._lock = threading.Lock()
        self.people_finder: PeopleFinder | None = None
        self.ner_error: str | None = None

    # -- loading --

    SIGNAL_FILES = ("public_figures.yaml", "relations.yaml", "intent.yaml", "exclusions.yaml")

    def watched_paths(self) -> list[Path]:
        """The signal files; the engine reloads this detector when one changes."""
        base = self.signals_dir or _signals_dir()
        return [base / name for name in self.SIGNAL_FILES]

    def _classifier_thresholds(self) -> tuple[float, float]:
        th = getattr(self.classifier, "thresholds", None) or {}
        return (float(th.get(Category.NON_CONSENSUAL.value, 0.6)), float(th.get(Category.SEXUAL.value, 0.6)))

    def attach_classifier(self, detector: Any) -> None:
        """Use a loaded classifier detector's scores (see `classifier_scores_from`)."""
        self.classifier = classifier_scores_from(detector)

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            base = self.signals_dir or _signals_dir()
            figures = _load_yaml(base / "public_figures.yaml")["figures"]
            self._figures = _PhraseIndex()
            for fig in figures:
                for name in [fig["name"], *fig.get("aliases", [])]:
                    self._figures.add(name, fig["name"], WEAK if fig.get("ambiguous") else STRONG)

            rel = _load_yaml(base / "relations.yaml")
            self._relations = _PhraseIndex()
            for lang in ("en", "fr"):
                spec = rel[lang]
                for poss in spec["possessives"]:
                    for noun in spec["nouns"]:
                        self._relations.add(f"{poss} {noun}", "relation", STRONG)
                for ph in spec.get("phrases", []):
                    self._relations.add(ph, "relation", STRONG)

            intent = _load_yaml(base / "intent.yaml")["groups"]
            self._intent: list[tuple[str, str, re.Pattern[str]]] = []
            self._needs_person: set[tuple[str, str]] = set()
            for group, pats in intent.items():
                for p in pats:
                    self._intent.append((group, p["id"], re.compile(p["re"])))
                    if p.get("needs_person"):
                        self._needs_person.add((group, p["id"]))

            excl = _load_yaml(base / "exclusions.yaml")["groups"]
            self._framing: list[tuple[str, float, tuple[str, ...] | None, str, re.Pattern[str]]] = []
            for group, spec in excl.items():
                applies = tuple(spec["applies_to"]) if spec.get("applies_to") else None
                for p in spec["patterns"]:
                    self._framing.append((group, float(spec["factor"]), applies, p["id"], re.compile(p["re"])))

            if self._people_finder_arg is False or self.use_ner == "never":
                self.people_finder = None
            elif callable(self._people_finder_arg):
                self.people_finder = self._people_finder_arg
            else:
                self.people_finder, self.ner_error = _people_finder_default(warm=False)
            self._loaded = True

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
        if not self._loaded:
            self.load()
        view = view if view is not None else model_view(text)
        norm = lower_fold(view.text)
        out: list[Signal] = []

        def add(kind: str, group: str, pattern: str, start: int, end: int, strength: str) -> None:
            a, b = view.original_span(start, end)
            out.append(Signal(kind, group, pattern, a, b, strength, text[a:b]))

        tokens = [(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(norm)]
        for start, end, label, strength in self._figures.find(tokens):
            add("person", "figure", label, start, end, strength)
        for start, end, label, strength in self._relations.find(tokens):
            add("person", "relation", label, start, end, strength)
        for group, pid, rx in self._intent:
            for m in rx.finditer(norm):
                if m.end() == m.start():
                    continue
                if group in ("image_ref", "pronoun"):
                    add("person", group, pid, m.start(), m.end(), WEAK)
                else:
                    add("intent", group, pid, m.start(), m.end(), STRONG)
        for group, _factor, _applies, pid, rx in self._framing:
            for m in rx.finditer(norm):
                add("framing", group, pid, m.start(), m.end(), STRONG)

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

    def _near(self, a: Signal, b: Signal) -> bool:
        gap = max(a.start, b.start) - min(a.end, b.end)
        return gap <= self.window

    def score(self, text: str, clf: Mapping[str, float] | None = None, *, sigs: list[Signal] | None = None,
              view: Normalized | None = None) -> tuple[float, str, list[Signal], list[Signal]]:
        """(score, rule that fired, contributing signals, framing signals applied)."""
        view = view if view is not None else model_view(text)
        norm = lower_fold(view.text)
        if sigs is None:
            sigs = self.signals(text, view=view)
        persons = [s for s in sigs if s.kind == "person"]
        strong_p = [s for s in persons if s.strength == STRONG]
        weak_p = [s for s in persons if s.strength == WEAK]
        by_group: dict[str, list[Signal]] = {}
        for s in sigs:
            if s.kind == "intent":
                by_group.setdefault(s.group, []).append(s)
        framing = [s for s in sigs if s.kind == "framing"]

        def near_any(xs: list[Signal], ys: list[Signal], limit: int = 1) -> list[tuple[Signal, Signal]]:
            """Up to `limit` (x, y) pairs within the window (the first ones in text order)."""
            out: list[tuple[Signal, Signal]] = []
            for x in xs:
                for y in ys:
                    if self._near(x, y):
                        out.append((x, y))
                        if len(out) >= limit:
                            return out
            return out

        candidates: list[tuple[float, str, list[Signal], bool]] = []  # score, rule, signals, fiction-able

        alter = by_group.get("alter", [])
        nudity = by_group.get("nudity", [])
        sexual = by_group.get("sexual", [])
        if alter:
            pairs = near_any(alter, strong_p)
            if pairs:
                candidates.append((0.95, "alter+person", [pairs[0][0], pairs[0][1]], False))
            else:
                pairs = near_any(alter, weak_p)
                if pairs:
                    candidates.append((0.85, "alter+weak_person", [pairs[0][0], pairs[0][1]], False))
                else:
                    alone = [a for a in alter if (a.group, a.pattern) not in self._needs_person]
                    if alone:
                        candidates.append((0.45, "alter", [alone[0]], False))
        threat = by_group.get("threat", [])
        if threat:
            pairs = near_any(threat, nudity)
            if pairs:
                candidates.append((0.90, "threat+nudity", [pairs[0][0], pairs[0][1]], False))
        distribute = by_group.get("distribute", [])
        if distribute and nudity:
            pairs = near_any(distribute, nudity)
            if pairs:
                d, nu = pairs[0]
                person = [p for p in persons if self._near(p, d) or self._near(p, nu)]
                if person:
                    candidates.append((0.90, "distribute+nudity+person", [d, nu, person[0]], False))
                else:
                    candidates.append((0.65, "distribute+nudity", [d, nu], False))
        doxx = by_group.get("doxx", [])
        if doxx:
            pairs = near_any(doxx, nudity + alter + sexual)
            if pairs:
                candidates.append((0.90, "doxx+sexual", [pairs[0][0], pairs[0][1]], False))
        if by_group.get("voyeur_act"):
            candidates.append((0.85, "voyeur_act", [by_group["voyeur_act"][0]], False))
        if by_group.get("voyeur_device"):
            pairs = near_any(by_group["voyeur_device"], by_group.get("intimate_setting", []))
            if pairs:
                candidates.append((0.85, "voyeur_device+setting", [pairs[0][0], pairs[0][1]], False))
        if nudity:
            pairs = near_any(nudity, strong_p)
            named = [p for p in weak_p if p.group in ("ner", "name_heuristic", "figure")]
            imagery = by_group.get("imagery", [])
            named_pairs = [(n, p) for n, p in near_any(nudity, named, limit=50)
                           if any(self._near(n, i) for i in imagery)]
            if pairs:
                candidates.append((0.85, "nudity+person", [pairs[0][0], pairs[0][1]], False))
            elif named_pairs:
                im = next(i for i in imagery if self._near(named_pairs[0][0], i))
                candidates.append((0.70, "nudity+named_person+imagery",
                                   [named_pairs[0][0], named_pairs[0][1], im], True))
            else:
                pairs = near_any(nudity, weak_p)
                if pairs:
                    candidates.append((0.45, "nudity+weak_person", [pairs[0][0], pairs[0][1]], True))
        if sexual:
            pairs = near_any(sexual, strong_p)
            if pairs:
                candidates.append((0.75, "sexual+person", [pairs[0][0], pairs[0][1]], False))
            else:
                pairs = near_any(sexual, weak_p)
                named_pairs = near_any(sexual, [p for p in weak_p if p.group in ("ner", "figure", "name_heuristic")])
                if named_pairs and _SECOND_PERSON.search(norm):
                    # a sexual scene between the user and a named person
                    candidates.append((0.55, "sexual+named_person+you", [named_pairs[0][0], named_pairs[0][1]], True))
                elif pairs:
                    candidates.append((0.45, "sexual+weak_person", [pairs[0][0], pairs[0][1]], True))
        if clf is not None:
            nc = float(clf.get(Category.NON_CONSENSUAL.value, 0.0))
            sx = float(clf.get(Category.SEXUAL.value, 0.0))
            t_nc, t_sx = self._classifier_thresholds()
            referenced = [p for p in persons if p.group != "pronoun"]
            if nc >= t_nc and referenced:
                candidates.append((min(1.0, 0.5 + 0.45 * nc), "classifier+person", [referenced[0]], False))
            if sx >= t_sx and strong_p:
                candidates.append((0.70, "classifier_sexual+person", [strong_p[0]], False))

        if not candidates:
            return 0.0, "", [], []
        best = max(candidates, key=lambda c: c[0])
        score, rule, used, fiction_able = best
        directive = any(
            s.group in _DIRECTIVE_GROUPS and _is_directive(norm, view_index(view, s.start))
            for s in used if s.kind == "intent"
        )
        # Explain with every person reference near the intent, strongest first (a NER name
        # next to "this photo of" is reported too), not only the pair that set the score.
        anchors = [u for u in used if u.kind == "intent"] or used
        extra = [p for p in sorted(persons, key=lambda p: (p.strength != STRONG, p.start))
                 if p not in used and any(self._near(p, a) for a in anchors)
                 and p.group not in ("pronoun",)]
        used = used + extra
        applied: list[Signal] = []
        # framing counts only near the signals it would excuse (a long chat or completion with
        # "report" in one paragraph does not excuse a request in another)
        framing = [f for f in framing if any(self._near(f, u) for u in used)]
        if directive:
            framing = []  # an imperative request is not excused by the words around it
        if rule == "threat+nudity":
            # A sextortion message is never "news" or "fiction"; only the victim's own framing
            # ("he is threatening to...", "should I pay") lowers it.
            framing = [f for f in framing if f.pattern == "self_victim"]
        if framing:
            factor = 1.0
            for f in framing:
                spec = next(x for x in self._framing if x[0] == f.group and x[3] == f.pattern)
                applies = spec[2]
                if applies is not None and not fiction_able:
                    continue
                if spec[1] < factor:
                    factor = spec[1]
                    applied = [f]
            score *= factor
            if clf is not None and applied:
                nc = float(clf.get(Category.NON_CONSENSUAL.value, 0.0))
                if nc < 0.05:
                    score *= 0.5
                elif nc >= 0.9:
                    score = max(score, 0.5)
        return score, rule, used, applied

    # -- the Detector protocol --

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]:
        if not self._loaded:
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
            score, rule, used, applied = self.score(text, clf, sigs=all_sigs[i], view=views[i])
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
