"""What detectors report and what the policy concludes.

A `Finding` is one piece of evidence from one detector; a `Verdict` is the policy's decision
over all findings for one text. Both are frozen so they can be cached and shared across
concurrent requests.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Category(enum.StrEnum):
    """The built-in harm categories; their names are part of the public API."""

    HATE = "hate"
    EXTREMISM = "extremism"
    NON_CONSENSUAL = "non_consensual"
    SEXUAL = "sexual"


CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)


class Severity(enum.StrEnum):
    SAFE = "safe"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Action(enum.StrEnum):
    """What the filter does with a text (and what `x-safety-filter-action` reports)."""

    ALLOW = "allow"
    ANNOTATE = "annotate"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        """allow < annotate < block: the stronger action wins when verdicts are combined."""
        return _ACTION_ORDER.index(self)


_ACTION_ORDER = (Action.ALLOW, Action.ANNOTATE, Action.BLOCK)


class Witness(enum.StrEnum):
    """The kind of evidence a finding is: `policy.decide` combines the two kinds as a noisy-OR.

    A `LIST` finding is a rule-list hit; a `MODEL` finding is a reading of context (the classifier,
    the NCII detector), and models agree too often to count twice.
    """

    LIST = "list"
    MODEL = "model"


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of evidence that a text belongs to a category.

    `category` is one of `Category` or a custom category named by a rule list.
    `span` is a (start, end) character range in the *original* text, when known.
    `rule_id` names the list entry or model head that fired; `evidence` is a short,
    human-readable explanation (never required for a decision). `action` is set only by a rule
    list that carries its own action ("annotate" for a watch list, say); otherwise the policy's
    action for the category applies. `witness` says which kind of evidence it is (see `Witness`).
    """

    category: str
    score: float
    source: str
    span: tuple[int, int] | None = None
    rule_id: str | None = None
    evidence: str | None = None
    action: Action | None = None
    witness: Witness = Witness.MODEL

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"finding score must be in [0, 1], got {self.score!r}")
        if self.span is not None and not 0 <= self.span[0] <= self.span[1]:
            raise ValueError(f"finding span must be (start, end) with 0 <= start <= end, got {self.span!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"category": self.category, "score": round(self.score, 4), "source": self.source}
        if self.span is not None:
            out["span"] = list(self.span)
        if self.rule_id is not None:
            out["rule_id"] = self.rule_id
        if self.evidence is not None:
            out["evidence"] = self.evidence
        if self.action is not None:
            out["action"] = self.action.value
        return out


@dataclass(frozen=True, slots=True)
class CategoryResult:
    """The policy's reading of one category for one text."""

    score: float
    severity: Severity
    filtered: bool

    def to_dict(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "severity": self.severity.value, "filtered": self.filtered}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one text (or several merged, e.g. all messages of a prompt).

    `error` is set when the text could not be inspected; the action then follows the
    policy's fail mode.
    """

    action: Action
    categories: Mapping[str, CategoryResult]
    findings: tuple[Finding, ...] = ()
    error: str | None = None
    policy_version: str = ""

    @property
    def blocked(self) -> bool:
        return self.action is Action.BLOCK

    def filtered_categories(self) -> list[str]:
        return [name for name, result in self.categories.items() if result.filtered]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action.value,
            "categories": {name: result.to_dict() for name, result in self.categories.items()},
            "findings": [f.to_dict() for f in self.findings],
        }
        if self.error is not None:
            out["error"] = self.error
        return out
