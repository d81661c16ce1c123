"""How NCII signals combine into a score: the table of the package docstring, as data.

`RULES` lists, per intent group (the anchor), the combinations in order of strength: the first
whose partner signal is found within the window of the anchor sets that group's candidate score.
`CLASSIFIER_RULES` add candidates from the classifier's scores. The text's score is the strongest
candidate, then scaled down by framing (`exclusions.yaml`) unless the intent is a directive.
`evaluate` returns a frozen `NCIIScore`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from safety_filter.detectors.ncii.signals import STRONG, WEAK, Framing, Signal, SignalData
from safety_filter.findings import Category
from safety_filter.text.normalize import Normalized
from safety_filter.text.view import view_index

# partners (what must be near the anchor); `_FINDERS` maps each to the method that finds it
ALONE = "alone"  # the anchor by itself
ALONE_UNLESS_NEEDS_PERSON = "alone unless it needs a person"
STRONG_PERSON = "strong person"
WEAK_PERSON = "weak person"
NUDITY = "nudity"
NUDITY_AND_PERSON = "nudity, and a person near either"
SEXUAL_CONTENT = "nudity, alter or sexual"
INTIMATE_SETTING = "intimate setting"
NAMED_PERSON_AND_IMAGERY = "named person, imagery near the anchor"
NAMED_PERSON_AND_YOU = "named person, and the user in the scene"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    score: float
    anchor: str  # the intent group the rule starts from
    partner: str
    fiction: bool = False  # fiction framing may lower it (it rests on sexual/nudity words alone)
    victim_framing_only: bool = False  # only the victim's own framing lowers it (sextortion)


RULES: tuple[Rule, ...] = (
    Rule("alter+person", 0.95, "alter", STRONG_PERSON),
    Rule("alter+weak_person", 0.85, "alter", WEAK_PERSON),
    Rule("alter", 0.45, "alter", ALONE_UNLESS_NEEDS_PERSON),
    Rule("threat+nudity", 0.90, "threat", NUDITY, victim_framing_only=True),
    Rule("distribute+nudity+person", 0.90, "distribute", NUDITY_AND_PERSON),
    Rule("distribute+nudity", 0.65, "distribute", NUDITY),
    Rule("doxx+sexual", 0.90, "doxx", SEXUAL_CONTENT),
    Rule("voyeur_act", 0.85, "voyeur_act", ALONE),
    Rule("voyeur_device+setting", 0.85, "voyeur_device", INTIMATE_SETTING),
    Rule("nudity+person", 0.85, "nudity", STRONG_PERSON),
    Rule("nudity+named_person+imagery", 0.70, "nudity", NAMED_PERSON_AND_IMAGERY, fiction=True),
    Rule("nudity+weak_person", 0.45, "nudity", WEAK_PERSON, fiction=True),
    Rule("sexual+person", 0.75, "sexual", STRONG_PERSON),
    Rule("sexual+named_person+you", 0.55, "sexual", NAMED_PERSON_AND_YOU, fiction=True),
    Rule("sexual+weak_person", 0.45, "sexual", WEAK_PERSON, fiction=True),
)


@dataclass(frozen=True, slots=True)
class ClassifierRule:
    """A classifier score at or above the classifier's threshold, next to a person: base + slope * p."""

    name: str
    category: str
    person: str  # "referenced" (any person but a pronoun) or "strong"
    base: float
    slope: float


CLASSIFIER_RULES: tuple[ClassifierRule, ...] = (
    ClassifierRule("classifier+person", Category.NON_CONSENSUAL.value, "referenced", 0.5, 0.45),
    ClassifierRule("classifier_sexual+person", Category.SEXUAL.value, "strong", 0.70, 0.0),
)
DEFAULT_CLASSIFIER_THRESHOLD = 0.6
CLASSIFIER_SURE_NOT = 0.05  # below: a framed score is halved once more
CLASSIFIER_SURE = 0.9  # at or above: a framed score stays at FRAMED_FLOOR or above
FRAMED_FLOOR = 0.5

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
_NAMED = ("ner", "name_heuristic", "figure")


@dataclass(frozen=True, slots=True)
class NCIIScore:
    """The score of one text, the rule that set it, its signals and the framing that lowered it."""

    score: float
    rule: str  # "" when no rule applies
    signals: tuple[Signal, ...]  # the contributing signals, and the people near them
    framing: tuple[Signal, ...]  # the framing applied (at most one)


NOTHING = NCIIScore(0.0, "", (), ())


def is_directive(norm: str, start: int) -> bool:
    clause_start = 0
    for m in _CLAUSE_BOUNDARY.finditer(norm, max(0, start - 120), start):
        clause_start = m.end()
    if start - clause_start > 120:
        return False
    return bool(_DIRECTIVE_PREFIX.match(norm[clause_start:start]))


class _Signals:
    """One text's signals, grouped, with the window test."""

    def __init__(self, sigs: Sequence[Signal], norm: str, window: int, needs_person: frozenset[tuple[str, str]]):
        self.norm, self.window, self.needs_person = norm, window, needs_person
        self.persons = [s for s in sigs if s.kind == "person"]
        self.strong = [s for s in self.persons if s.strength == STRONG]
        self.weak = [s for s in self.persons if s.strength == WEAK]
        self.named = [s for s in self.weak if s.group in _NAMED]
        self.framing = [s for s in sigs if s.kind == "framing"]
        self.groups: dict[str, list[Signal]] = {}
        for s in sigs:
            if s.kind == "intent":
                self.groups.setdefault(s.group, []).append(s)

    def group(self, name: str) -> list[Signal]:
        return self.groups.get(name, [])

    def near(self, a: Signal, b: Signal) -> bool:
        return max(a.start, b.start) - min(a.end, b.end) <= self.window

    def pairs(self, xs: list[Signal], ys: list[Signal], limit: int = 1) -> list[tuple[Signal, Signal]]:
        """Up to `limit` (x, y) pairs within the window (the first ones in text order)."""
        out: list[tuple[Signal, Signal]] = []
        for x in xs:
            for y in ys:
                if self.near(x, y):
                    out.append((x, y))
                    if len(out) >= limit:
                        return out
        return out

    def first_pair(self, xs: list[Signal], ys: list[Signal]) -> list[Signal] | None:
        found = self.pairs(xs, ys)
        return list(found[0]) if found else None

    def partner(self, anchors: list[Signal], partner: str) -> list[Signal] | None:
        """The signals of a rule whose anchors are `anchors`, or None when its partner is not there."""
        return _FINDERS[partner](self, anchors) if anchors else None

    def _alone(self, anchors: list[Signal]) -> list[Signal] | None:
        return [anchors[0]]

    def _alone_unless_needs_person(self, anchors: list[Signal]) -> list[Signal] | None:
        return next(([a] for a in anchors if (a.group, a.pattern) not in self.needs_person), None)

    def _strong_person(self, anchors: list[Signal]) -> list[Signal] | None:
        return self.first_pair(anchors, self.strong)

    def _weak_person(self, anchors: list[Signal]) -> list[Signal] | None:
        return self.first_pair(anchors, self.weak)

    def _nudity(self, anchors: list[Signal]) -> list[Signal] | None:
        return self.first_pair(anchors, self.group("nudity"))

    def _nudity_and_person(self, anchors: list[Signal]) -> list[Signal] | None:
        pair = self.first_pair(anchors, self.group("nudity"))
        if pair is None:
            return None
        person = [p for p in self.persons if any(self.near(p, s) for s in pair)]
        return [*pair, person[0]] if person else None

    def _sexual_content(self, anchors: list[Signal]) -> list[Signal] | None:
        return self.first_pair(anchors, self.group("nudity") + self.group("alter") + self.group("sexual"))

    def _intimate_setting(self, anchors: list[Signal]) -> list[Signal] | None:
        return self.first_pair(anchors, self.group("intimate_setting"))

    def _named_person_and_imagery(self, anchors: list[Signal]) -> list[Signal] | None:
        imagery = self.group("imagery")
        for n, p in self.pairs(anchors, self.named, limit=50):
            image = next((i for i in imagery if self.near(n, i)), None)
            if image is not None:
                return [n, p, image]
        return None

    def _named_person_and_you(self, anchors: list[Signal]) -> list[Signal] | None:
        return self.first_pair(anchors, self.named) if _SECOND_PERSON.search(self.norm) else None


_FINDERS: dict[str, Callable[[_Signals, list[Signal]], list[Signal] | None]] = {
    ALONE: _Signals._alone,
    ALONE_UNLESS_NEEDS_PERSON: _Signals._alone_unless_needs_person,
    STRONG_PERSON: _Signals._strong_person,
    WEAK_PERSON: _Signals._weak_person,
    NUDITY: _Signals._nudity,
    NUDITY_AND_PERSON: _Signals._nudity_and_person,
    SEXUAL_CONTENT: _Signals._sexual_content,
    INTIMATE_SETTING: _Signals._intimate_setting,
    NAMED_PERSON_AND_IMAGERY: _Signals._named_person_and_imagery,
    NAMED_PERSON_AND_YOU: _Signals._named_person_and_you,
}


def _candidates(ctx: _Signals, clf: Mapping[str, float] | None,
                thresholds: Mapping[str, float]) -> list[tuple[Rule | ClassifierRule, float, list[Signal]]]:
    out: list[tuple[Rule | ClassifierRule, float, list[Signal]]] = []
    settled: set[str] = set()  # anchors whose strongest matching rule is found
    for rule in RULES:
        if rule.anchor in settled:
            continue
        used = ctx.partner(ctx.group(rule.anchor), rule.partner)
        if used is not None:
            settled.add(rule.anchor)
            out.append((rule, rule.score, used))
    if clf is not None:
        for crule in CLASSIFIER_RULES:
            p = float(clf.get(crule.category, 0.0))
            people = ctx.strong if crule.person == "strong" else [s for s in ctx.persons if s.group != "pronoun"]
            if p >= thresholds.get(crule.category, DEFAULT_CLASSIFIER_THRESHOLD) and people:
                out.append((crule, min(1.0, crule.base + crule.slope * p), [people[0]]))
    return out


def _framed(ctx: _Signals, rule: Rule | ClassifierRule, used: list[Signal], directive: bool,
            framings: Mapping[tuple[str, str], Framing],
            naming: frozenset[tuple[str, str]] = frozenset()) -> tuple[float, list[Signal]]:
    """(factor, framing applied): the strongest framing near the signals that may lower the score.

    A sextortion threat is lowered only by its victim's own words (help-seeking words do not
    appear in a threat), unless its anchors only name the harm ("what is sextortion?")."""
    if directive:
        return 1.0, []  # an imperative request is not excused by the words around it
    # framing counts only near the signals it would excuse (a long chat or completion with
    # "report" in one paragraph does not excuse a request in another)
    near = [f for f in ctx.framing if any(ctx.near(f, u) for u in used)]
    if isinstance(rule, Rule) and rule.victim_framing_only and not all(
            (a.group, a.pattern) in naming for a in ctx.groups.get(rule.anchor, ())):
        near = [f for f in near if f.pattern == "self_victim"]  # a threat itself: only its victim's words
    fiction = isinstance(rule, Rule) and rule.fiction
    factor, applied = 1.0, []
    for f in near:
        spec = framings[(f.group, f.pattern)]
        if spec.fiction_only and not fiction:
            continue
        if spec.factor < factor:
            factor, applied = spec.factor, [f]
    return factor, applied


def evaluate(sigs: Sequence[Signal], view: Normalized, norm: str, data: SignalData, *, window: int,
             clf: Mapping[str, float] | None = None, thresholds: Mapping[str, float] | None = None) -> NCIIScore:
    """Score one text's signals (`norm`: the lowercase fold of its model view `view`)."""
    ctx = _Signals(sigs, norm, window, data.needs_person)
    candidates = _candidates(ctx, clf, thresholds or {})
    if not candidates:
        return NOTHING
    rule, score, used = max(candidates, key=lambda c: c[1])
    directive = any(
        s.group in _DIRECTIVE_GROUPS and is_directive(norm, view_index(view, s.start))
        for s in used if s.kind == "intent"
    )
    # Explain with every person reference near the intent, strongest first (a NER name
    # next to "this photo of" is reported too), not only the pair that set the score.
    anchors = [u for u in used if u.kind == "intent"] or used
    used = used + [p for p in sorted(ctx.persons, key=lambda p: (p.strength != STRONG, p.start))
                   if p not in used and any(ctx.near(p, a) for a in anchors) and p.group != "pronoun"]
    framings: dict[tuple[str, str], Framing] = {}
    for f in data.framings:
        framings.setdefault((f.group, f.pattern_id), f)
    factor, applied = _framed(ctx, rule, used, directive, framings, data.naming)
    score *= factor
    if clf is not None and applied:
        nc = float(clf.get(Category.NON_CONSENSUAL.value, 0.0))
        if nc < CLASSIFIER_SURE_NOT:
            score *= 0.5
        elif nc >= CLASSIFIER_SURE:
            score = max(score, FRAMED_FLOOR)
    return NCIIScore(score, rule.name, tuple(used), tuple(applied))
