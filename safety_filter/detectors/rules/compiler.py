"""All entries of a set of lists compiled into one Aho-Corasick automaton, and matching a text.

The text is normalised, scanned once, and whole-word / prefix / suffix boundaries are checked on
the normalised text; a text with words split by '-', '.' or '_' ("ki-ll") is scanned a second
time in its fused spelling. Each regex entry is guarded by its prefilter literals
(`regexes.regex_triggers`), added to the same automaton, so a regex only runs on texts that
contain one of them. A regex that times out raises `InspectionError` (the policy's fail mode
applies: a rule someone can make slow must not switch itself off).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import ahocorasick_rs

from safety_filter.detectors.rules.model import DEFAULT_REGEX_TIMEOUT, BlocklistError, Entry, RuleList, RuleMatch
from safety_filter.detectors.rules.schema import load_list
from safety_filter.errors import InspectionError
from safety_filter.text.normalize import Normalized, has_joiners, normalize, normalize_term_runs, runs_compatible

log = logging.getLogger("safety_filter.detectors.rules")

DFA_MAX_PATTERNS = 20_000


def boundary_ok(mode: str, text: str, start: int, end: int) -> bool:
    if mode == "substring":
        return True
    if mode in ("word", "prefix") and start > 0 and text[start].isalnum() and text[start - 1].isalnum():
        return False
    return not (mode in ("word", "suffix") and end < len(text) and text[end - 1].isalnum() and text[end].isalnum())


class CompiledRules:
    """All entries of a set of lists in one automaton, plus the few regex entries."""

    def __init__(self, lists: Sequence[RuleList], regex_timeout: float = DEFAULT_REGEX_TIMEOUT) -> None:
        self.lists = list(lists)
        self.regex_timeout = regex_timeout
        names: dict[str, Path] = {}
        for rl in self.lists:
            if rl.name in names:
                raise BlocklistError(f"{rl.path}: name: list name {rl.name!r} is already used by {names[rl.name]}")
            names[rl.name] = rl.path
        index: dict[str, int] = {}
        self.patterns: list[str] = []
        self.refs: list[list[tuple[Entry, dict[int, int]]]] = []
        self.regexes: list[Entry] = []
        self.global_allow_lists = {rl.name for rl in self.lists if rl.scope == "global"}

        def add(pattern: str, entry: Entry, runs: dict[int, int]) -> None:
            pid = index.get(pattern)
            if pid is None:
                pid = index[pattern] = len(self.patterns)
                self.patterns.append(pattern)
                self.refs.append([])
            self.refs[pid].append((entry, runs))

        self.always_regexes: list[Entry] = []
        self.trigger_refs: dict[int, list[Entry]] = {}
        for rl in self.lists:
            for entry in (*rl.entries, *rl.allow):
                if entry.kind == "regex":
                    self.regexes.append(entry)
                    if not entry.triggers:
                        self.always_regexes.append(entry)
                    continue
                add(entry.norm, entry, entry.runs or {})
                variants = []
                if entry.join and " " in entry.norm:
                    variants.append(normalize_term_runs(entry.term, join=True))  # #whitegenocide
                if "l" in entry.norm:
                    variants.append(normalize_term_runs(entry.term, l_as_i=True))  # ki11 for kill
                    if entry.join and " " in entry.norm:
                        variants.append(normalize_term_runs(entry.term, join=True, l_as_i=True))
                seen_variants = {entry.norm}
                for variant, runs in variants:
                    if variant and variant not in seen_variants:
                        seen_variants.add(variant)
                        add(variant, entry, runs)
        for entry in self.regexes:
            for trigger in sorted(entry.triggers or ()):
                pid = index.get(trigger)
                if pid is None:
                    pid = index[trigger] = len(self.patterns)
                    self.patterns.append(trigger)
                    self.refs.append([])
                self.trigger_refs.setdefault(pid, []).append(entry)
        # a DFA searches about twice as fast as the default contiguous NFA but takes ~1.3 KB per
        # pattern (128 MB at 100k): use it for lists up to DFA_MAX_PATTERNS patterns
        implementation = ahocorasick_rs.Implementation.DFA if len(self.patterns) <= DFA_MAX_PATTERNS else None
        self.automaton = (
            ahocorasick_rs.AhoCorasick(self.patterns, matchkind=ahocorasick_rs.MatchKind.Standard,
                                       implementation=implementation)
            if self.patterns else None
        )

    @property
    def term_count(self) -> int:
        return sum(len(rl.entries) + len(rl.allow) for rl in self.lists)

    def match(
        self, text: str, *, include_allowed: bool = False, normalized: Normalized | None = None
    ) -> list[RuleMatch]:
        """Entries that fire on `text`; raises InspectionError when a regex entry times out."""
        n = normalized if normalized is not None else normalize(text)
        blocks: list[tuple[Entry, tuple[int, int], tuple[int, int]]] = []
        allows: list[tuple[Entry, tuple[int, int]]] = []
        triggered = self._scan_terms(n, blocks, allows)
        self._run_regexes(text, n, triggered, blocks, allows, original=True)
        if has_joiners(text):  # "ki-ll", "ki.ll": the fused view too, allow exceptions included
            fused = normalize(text, fuse=True)
            extra: list[tuple[Entry, tuple[int, int], tuple[int, int]]] = []
            self._run_regexes(text, fused, self._scan_terms(fused, extra, allows), extra, allows, original=False)
            # a spelling both views read is one match, not two findings that add up
            seen = [(e.category, o) for e, _, o in blocks]
            blocks += [b for b in extra if not any(c == b[0].category and o[0] < b[2][1] and b[2][0] < o[1]
                                                   for c, o in seen)]
        return self._resolve(text, blocks, allows, include_allowed)

    def _scan_terms(self, n: Normalized, blocks: list[tuple[Entry, tuple[int, int], tuple[int, int]]],
                    allows: list[tuple[Entry, tuple[int, int]]]) -> set[int]:
        """Automaton matches on one normalised view; returns id() of the regexes it triggered."""
        s = n.text
        triggered: set[int] = set()  # id() of regex entries whose prefilter literal was found
        if self.automaton is None or not s:
            return triggered
        refs = self.refs
        trigger_refs = self.trigger_refs
        for pid, start, end in self.automaton.find_matches_as_indexes(s, overlapping=True):
            if pid in trigger_refs:
                for entry in trigger_refs[pid]:
                    triggered.add(id(entry))
            for entry, runs in refs[pid]:
                if not boundary_ok(entry.match, s, start, end):
                    continue
                if not runs_compatible(n.runs, start, runs, end - start,
                                       open_start=entry.match in ("substring", "suffix"),
                                       open_end=entry.match in ("substring", "prefix")):
                    continue
                ospan = n.original_span(start, end)
                if entry.allow:
                    allows.append((entry, ospan))
                else:
                    blocks.append((entry, (start, end) if not n.fuse else (-1, -1), ospan))
        return triggered

    def _run_regexes(self, text: str, n: Normalized, triggered: set[int],
                     blocks: list[tuple[Entry, tuple[int, int], tuple[int, int]]],
                     allows: list[tuple[Entry, tuple[int, int]]], *, original: bool) -> None:
        """Regex entries on one view (`original`: also those that read the original text)."""
        s = n.text
        to_run = self.always_regexes if not triggered else \
            [e for e in self.regexes if not e.triggers or id(e) in triggered]
        for entry in to_run:
            if entry.on != "normalized" and not original:
                continue
            target = s if entry.on == "normalized" else text
            # bounds exponential blow-ups; grows with the text so a linear scan of a long text is not cut
            timeout = self.regex_timeout * max(1.0, len(target) / 100_000)
            try:
                for m in entry.pattern.finditer(target, timeout=timeout):
                    if m.end() == m.start():
                        continue
                    if entry.on == "normalized":
                        nspan = m.span() if not n.fuse else (-1, -1)
                        ospan = n.original_span(*m.span())
                    else:
                        ospan = m.span()
                        nspan = (-1, -1)
                    if entry.allow:
                        allows.append((entry, ospan))
                    else:
                        blocks.append((entry, nspan, ospan))
            except TimeoutError:
                # skipping the rule would let whoever can make it slow switch it off: the text
                # is uninspected, and the engine applies the policy's fail mode
                log.warning("rule %s timed out after %.0f ms on a %d-character text", entry.rule_id,
                            timeout * 1000, len(text))
                raise InspectionError(f"rule {entry.rule_id} timed out after {timeout * 1000:.0f} ms on a "
                                      f"{len(text)}-character text") from None

    def _resolve(self, text: str, blocks: list[tuple[Entry, tuple[int, int], tuple[int, int]]],
                 allows: list[tuple[Entry, tuple[int, int]]], include_allowed: bool) -> list[RuleMatch]:
        """Blocks not covered by an allow exception of their list (or a global one), deduplicated."""
        out: list[RuleMatch] = []
        seen: set[tuple[str, tuple[int, int]]] = set()
        for entry, nspan, ospan in blocks:
            key = (entry.rule_id, ospan)
            if key in seen:
                continue
            seen.add(key)
            allowed_by = None
            for aentry, aspan in allows:
                if (aentry.list_name == entry.list_name or aentry.list_name in self.global_allow_lists) and \
                        aspan[0] <= ospan[0] and ospan[1] <= aspan[1]:
                    allowed_by = aentry
                    break
            if allowed_by is not None and not include_allowed:
                continue
            out.append(RuleMatch(entry, nspan, ospan, text[ospan[0]:ospan[1]], allowed_by))
        out.sort(key=lambda m: (m.span, m.rule_id))
        return out


def compile_lists(paths: Iterable[Path], regex_timeout: float = DEFAULT_REGEX_TIMEOUT) -> CompiledRules:
    return CompiledRules([load_list(p) for p in paths], regex_timeout=regex_timeout)
