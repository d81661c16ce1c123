"""What a loaded rule list is: its entries, the list itself, and one match of an entry on a text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safety_filter.errors import ConfigurationError

MATCH_MODES = ("word", "prefix", "suffix", "substring")
LINT_CHECKS = ("duplicate", "merged", "shadowed", "over-broad", "short", "regex")
DEFAULT_REGEX_TIMEOUT = 0.1


class BlocklistError(ConfigurationError):
    """A list that cannot be loaded; the message names the file, the entry and the problem."""


@dataclass(frozen=True, slots=True)
class Entry:
    list_name: str
    category: str
    term: str  # as written in the list (the regex source for regex entries)
    rule_id: str
    kind: str  # "term" or "regex"
    match: str = "word"
    score: float = 1.0
    allow: bool = False
    norm: str = ""  # normalised literal
    on: str = "normalized"  # regexes: "normalized" or "original"
    join: bool = True
    source: str = ""  # file
    index: int = 0  # position in its section (1-based), for messages
    pattern: Any = None  # compiled regex
    lint_ignore: tuple[str, ...] = ()  # lint checks reviewed and accepted for this entry
    runs: Any = None  # {index in norm: run length > 1} (letters repeated in the entry itself)
    triggers: Any = None  # regexes: literals one of which any match contains (prefilter), or None


@dataclass(slots=True)
class RuleList:
    name: str
    category: str
    path: Path
    action: str | None = None
    score: float = 1.0
    description: str = ""
    language: str | None = None
    scope: str = "list"  # allow exceptions apply to this list, or "global" (every list)
    entries: list[Entry] = field(default_factory=list)
    allow: list[Entry] = field(default_factory=list)
    sha256: str = ""


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """One entry that fired (or was suppressed by an allow exception) on one text."""

    entry: Entry
    norm_span: tuple[int, int]
    span: tuple[int, int]  # in the original text
    evidence: str
    allowed_by: Entry | None = None

    @property
    def rule_id(self) -> str:
        return self.entry.rule_id
