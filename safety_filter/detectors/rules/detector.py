"""The rules detector: findings from rule lists, and `explain` for `blocklist explain`."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safety_filter.detectors.base import BaseDetector
from safety_filter.detectors.rules.compiler import CompiledRules, compile_lists
from safety_filter.detectors.rules.model import DEFAULT_REGEX_TIMEOUT, BlocklistError, RuleMatch
from safety_filter.detectors.rules.schema import resolve_lists
from safety_filter.findings import Action, Finding, Witness
from safety_filter.text.mentions import Mentions
from safety_filter.text.normalize import normalize

log = logging.getLogger("safety_filter.detectors.rules")

NORMALIZER_VERSION = "2"


class RulesDetector(BaseDetector):
    """Findings from rule lists. `lists` items: "default" (every shipped list), files or folders.

    The constructor only stores the configuration; `load()` parses, validates and compiles
    everything (raising `BlocklistError` with the file, entry and problem). The engine hot
    reloads by building a new detector, calling `load()`, and swapping it in; the old one stays
    active if `load()` raises.
    """

    name = "rules"

    def __init__(self, lists: Sequence[str | Path] = ("default",), *, regex_timeout: float = DEFAULT_REGEX_TIMEOUT,
                 max_evidence: int = 200, mention_weight: float = 1.0) -> None:
        if isinstance(lists, (str, Path)):
            lists = (lists,)
        self.lists_spec: tuple[str | Path, ...] = tuple(lists)
        self.mention_weight = mention_weight  # the most an entry weighs in a mention (text.mentions)
        self.regex_timeout = regex_timeout
        self.max_evidence = max_evidence
        self._compiled: CompiledRules | None = None
        self._files: list[Path] = []
        self._dirs: list[Path] = []
        self.version = ""  # content hash of the loaded lists (and normaliser version), for the audit trail
        self._actions: dict[str, Action] = {}
        self._lock = threading.Lock()
        self.load_seconds: float | None = None

    # configuration and state
    @property
    def loaded(self) -> bool:
        return self._compiled is not None

    @property
    def compiled(self) -> CompiledRules:
        if self._compiled is None:
            raise RuntimeError("RulesDetector.load() has not been called")
        return self._compiled

    @property
    def list_actions(self) -> dict[str, str | None]:
        """List name -> the list's action override (None: the policy decides)."""
        return {rl.name: rl.action for rl in self.compiled.lists}

    @property
    def list_categories(self) -> dict[str, str]:
        return {rl.name: rl.category for rl in self.compiled.lists}

    def action_for(self, finding: Finding) -> str | None:
        """The action override of the list a finding comes from, if any (also in `Finding.action`)."""
        if not finding.rule_id:
            return None
        return self.list_actions.get(finding.rule_id.split(":", 1)[0])

    def watched_paths(self) -> list[Path]:
        """List files and the folders they were found in (a new file in a folder changes it)."""
        if self._compiled is None:
            try:
                files, dirs = resolve_lists(self.lists_spec)
            except BlocklistError:
                return []
            return [*files, *dirs]
        return [*self._files, *self._dirs]

    # lifecycle
    def load(self) -> None:
        t0 = time.perf_counter()
        files, dirs = resolve_lists(self.lists_spec)
        compiled = compile_lists(files, regex_timeout=self.regex_timeout)
        h = hashlib.sha256(f"normalizer:{NORMALIZER_VERSION}\n".encode())
        for rl in compiled.lists:
            h.update(f"{rl.name}\0{rl.sha256}\n".encode())
        actions = {rl.name: Action(rl.action) for rl in compiled.lists if rl.action}
        with self._lock:
            self._files, self._dirs = files, dirs
            self._actions = actions
            self._compiled = compiled
            self.version = "sha256:" + h.hexdigest()[:16]
        self.load_seconds = time.perf_counter() - t0
        log.info("rules: loaded %d lists, %d entries, %d patterns in %.2fs (%s)", len(compiled.lists),
                 compiled.term_count, len(compiled.patterns), self.load_seconds, self.version)

    def match(self, text: str, *, include_allowed: bool = False) -> list[RuleMatch]:
        return self.compiled.match(text, include_allowed=include_allowed)

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]:
        compiled = self.compiled
        actions = self._actions
        out: list[list[Finding]] = []
        for text in texts:
            findings = []
            matches = compiled.match(text)
            mentioned = Mentions(text)
            for m in matches:
                evidence = m.evidence if len(m.evidence) <= self.max_evidence else m.evidence[: self.max_evidence] + "…"
                score = m.entry.score
                if score > self.mention_weight and mentioned.covers(m.span):
                    score, evidence = self.mention_weight, f"{evidence} (mentioned)"
                findings.append(Finding(category=m.entry.category, score=score, source=self.name,
                                        span=m.span, rule_id=m.rule_id, evidence=evidence,
                                        action=actions.get(m.entry.list_name), witness=Witness.LIST))
            out.append(findings)
        return out

    def explain(self, text: str) -> dict[str, Any]:
        """Which entries fired on which spans, with the normalised form (for `blocklist explain`)."""
        compiled = self.compiled
        n = normalize(text)
        matches = compiled.match(text, include_allowed=True, normalized=n)
        mentioned = Mentions(text)

        def as_found(m: RuleMatch) -> float:
            return min(m.entry.score, self.mention_weight) if mentioned.covers(m.span) else m.entry.score

        return {
            "text": text,
            "normalized": n.text,
            "version": self.version,
            "matches": [
                {
                    "rule_id": m.rule_id,
                    "list": m.entry.list_name,
                    "category": m.entry.category,
                    "kind": m.entry.kind,
                    "match": m.entry.match if m.entry.kind == "term" else f"regex on {m.entry.on} text",
                    "entry": m.entry.term,
                    "entry_normalized": m.entry.norm or None,
                    "score": m.entry.score,
                    "mentioned": mentioned.covers(m.span),
                    "score_as_found": as_found(m),
                    "span": list(m.span),
                    "evidence": m.evidence,
                    "normalized_span": list(m.norm_span) if m.norm_span[0] >= 0 else None,
                    "normalized_evidence": n.text[m.norm_span[0]:m.norm_span[1]] if m.norm_span[0] >= 0 else None,
                    "allowed_by": m.allowed_by.rule_id if m.allowed_by else None,
                }
                for m in matches
            ],
        }
