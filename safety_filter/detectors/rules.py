"""Rule lists kept by security teams: loading, validation, one automaton, and the detector.

A list is a YAML file (name, category, action, entries, allow exceptions...) or a plain `.txt`
file with one term per line; `blocklists/README.md` documents both formats. Every literal entry
of every loaded list is normalised with `safety_filter.text.normalize` and compiled into ONE
Aho-Corasick automaton (`ahocorasick_rs`), whose matching cost does not depend on the number of
terms. The text is normalised the same way, scanned once, and whole-word / prefix / suffix
boundaries are checked on the normalised text; a text with words split by '-', '.' or '_'
("ki-ll") is scanned a second time in its fused spelling. Regex entries run with the `regex`
package's timeout, after a load-time check that refuses nested quantifiers and patterns that
blow up on adversarial probes; a timeout at run time raises `InspectionError` (the policy's fail
mode applies: a rule someone can make slow must not switch itself off). Each regex is guarded by
literals worked out from its source (`regex_triggers`), added to the same automaton, so a regex
only runs on texts that contain one of them. A list's `action` override is carried in
`Finding.action`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ahocorasick_rs
import regex
import yaml

from safety_filter.detectors.base import BaseDetector
from safety_filter.errors import ConfigurationError, InspectionError
from safety_filter.findings import CATEGORIES, Action, Finding, Witness
from safety_filter.text.normalize import (
    Normalized,
    fold_char,
    has_joiners,
    normalize,
    normalize_term_runs,
    runs_compatible,
)

__all__ = [
    "BlocklistError",
    "CompiledRules",
    "Entry",
    "RuleList",
    "RuleMatch",
    "RulesDetector",
    "compile_lists",
    "list_files",
    "load_list",
    "resolve_lists",
]

log = logging.getLogger(__name__)

LIST_SUFFIXES = (".yaml", ".yml", ".txt")
MATCH_MODES = ("word", "prefix", "suffix", "substring")
ACTIONS = tuple(a.value for a in Action)
DEFAULT_TXT_CATEGORY = "blocklist"
_CATEGORY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_LIST_KEYS = {
    "name", "category", "action", "score", "description", "language", "match", "join", "scope",
    "sources", "reviewed", "notes", "entries", "allow",
}
_ENTRY_KEYS = {"term", "regex", "id", "match", "score", "note", "target", "join", "lint_ignore"}
LINT_CHECKS = ("duplicate", "merged", "shadowed", "over-broad", "short", "regex")
_TXT_DIRECTIVES = {"name", "category", "action", "score", "description", "language", "match", "scope"}
# nested quantifier: a group that contains a quantifier, itself quantified: (a+)+  (\w*x)*  (a{2,})+
# (possessive quantifiers a++ and atomic groups (?>...) do not backtrack and are not flagged)
_QUANT = r"(?:(?<![+*?}\\])[+*]|\{\d*,\d*\})(?!\+)"
_NESTED_QUANTIFIER_RE = re.compile(rf"\((?!\?>)(?:[^()\\]|\\.)*{_QUANT}(?:[^()\\]|\\.)*\){_QUANT}")
REGEX_PROBE_TIMEOUT = 0.05
DEFAULT_REGEX_TIMEOUT = 0.1
NORMALIZER_VERSION = "2"
DFA_MAX_PATTERNS = 20_000


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


# --- loading ---------------------------------------------------------------------------------


def list_files(path: Path) -> list[Path]:
    """The list files under a folder (recursive, sorted), skipping README and `_`/`.` names."""
    if path.is_file():
        return [path]
    out = []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path)
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        if p.is_file() and p.suffix.lower() in LIST_SUFFIXES and p.stem.lower() != "readme":
            out.append(p)
    return out


def resolve_lists(lists: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """(list files, folders scanned) for a `lists` spec; "default" is the shipped blocklists."""
    from safety_filter.resources import blocklists_dir

    files: list[Path] = []
    dirs: list[Path] = []
    for item in lists:
        path = blocklists_dir() if str(item) == "default" else Path(item)
        if path.is_dir():
            dirs.extend([path, *(d for d in sorted(path.rglob("*")) if d.is_dir() and not any(
                part.startswith(("_", ".")) for part in d.relative_to(path).parts))])
            files.extend(list_files(path))
        elif path.is_file():
            files.append(path)
        else:
            raise BlocklistError(f"{path}: no such list file or folder")
    seen: set[Path] = set()
    unique = []
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(f)
    return unique, dirs


def _err(path: Path, where: str, problem: str) -> BlocklistError:
    return BlocklistError(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


def _check_score(path: Path, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise _err(path, where, f"score must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_category(path: Path, value: Any) -> str:
    if not isinstance(value, str) or not _CATEGORY_RE.match(value):
        raise _err(path, "category", f"must be one of {', '.join(CATEGORIES)} or a custom lowercase name "
                   f"([a-z][a-z0-9_]*), got {value!r}")
    return value


def _check_action(path: Path, value: Any) -> str | None:
    if value is None:
        return None
    if value not in ACTIONS:
        raise _err(path, "action", f"must be one of {', '.join(ACTIONS)}, got {value!r}")
    return str(value)


def _check_match(path: Path, where: str, value: Any) -> str:
    if value not in MATCH_MODES:
        raise _err(path, where, f"match must be one of {', '.join(MATCH_MODES)}, got {value!r}")
    return str(value)


def normalize_regex_source(source: str) -> str:
    """Bring the literal letters of a regex to the normalised form of the text it runs on.

    Normalised text is casefolded, has no accents, no doubled letters and no '-' (hyphens become
    spaces), so a regex written naturally ("installer", "déshabille-la", "hidden") could never
    match it. Outside escapes, letters are folded like text and runs of the same letter
    collapsed; outside character classes '-' becomes a space. Idempotent.
    """
    out: list[str] = []
    i, n = 0, len(source)
    in_class = False
    while i < n:
        c = source[i]
        if c == "\\" and i + 1 < n:
            j = i + 2
            if source[i + 1] in "pPNxuUg" and j < n and source[j] == "{":
                j = source.find("}", j) + 1 or n
            out.append(source[i:j])
            i = j
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        elif c == "(" and source.startswith("(?", i):
            # keep group syntax ((?:, (?i), (?P<name>...)) verbatim up to its ':' / ')' / '>'
            m = re.match(r"\(\?(?:P?<[^>]*>|P=[^)]*\)|[a-zA-Z\-]*[:)]|[=!>|]|<[=!])", source[i:])
            if m:
                out.append(m.group())
                i += m.end()
                continue
        if c.isalpha():
            folded = fold_char(c)
            if out and folded and out[-1] == folded and out[-1].isalpha():
                i += 1
                continue
            out.append(folded)
        elif c == "-" and not in_class:
            out.append(" ")
        else:
            out.append(c)
        i += 1
    return "".join(out)


MIN_TRIGGER_LEN = 3
# very common words make poor prefilter triggers (the regex would run on almost every text)
_STOPWORDS_TEXT = (
    "a an and are as at be but by for from had has have her his if in is it its not of on or our she "
    "so that the their them then there they this to was we were what when which who will with you your al "
    "every ce ces cet cete c'est dans de des du elle en est et il ils je la le les leur mais ne nous on ou "
    "par pas pour qu que qui sa se ses son sont sur ta te tes ton tu un une vous"
)
_TRIGGER_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def _trigger_quality(candidate: frozenset[str]) -> tuple[int, int]:
    if any(x.strip() in _TRIGGER_STOPWORDS for x in candidate):
        return (0, -len(candidate))
    return (min(len(x.strip()) for x in candidate), -len(candidate))


def regex_triggers(source: str) -> frozenset[str] | None:
    """Literal strings one of which every match of `source` must contain (None if unknown).

    Used as a prefilter: the literals go into the Aho-Corasick automaton and the regex only runs
    on texts where one of them was found, so a list's regexes cost almost nothing on clean text.
    Conservative: anything the analysis does not understand means "always run".
    """
    try:
        import re._constants as C
        import re._parser as P

        parsed = P.parse(source)
    except Exception:
        return None

    def factors(seq: Any) -> frozenset[str] | None:
        candidates: list[frozenset[str]] = []
        run: list[str] = []

        def flush() -> None:
            if run:
                candidates.append(frozenset({"".join(run)}))
                run.clear()

        for op, av in seq:
            if op is C.LITERAL:
                run.append(chr(av))
                continue
            if op is C.AT:
                continue  # zero-width (\b, ^, $)
            flush()
            sub: frozenset[str] | None = None
            if op is C.SUBPATTERN:
                sub = factors(av[-1])
            elif op is C.ATOMIC_GROUP:
                sub = factors(av)
            elif op is C.BRANCH:
                parts = [factors(branch) for branch in av[1]]
                if parts and all(p for p in parts):
                    sub = frozenset().union(*parts)  # type: ignore[arg-type]
            elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
                lo, _hi, inner = av
                sub = factors(inner) if lo >= 1 else None
            elif op is C.IN and av and len(av) <= 4 and all(o is C.LITERAL for o, _ in av):
                sub = frozenset(chr(v) for _, v in av)
            if sub:
                candidates.append(sub)
        flush()
        if not candidates:
            return None
        return max(candidates, key=_trigger_quality)

    found = factors(parsed)
    if not found or _trigger_quality(found)[0] < MIN_TRIGGER_LEN:
        return None
    return found


def check_regex(source: str) -> Any:
    """Compile a regex entry and refuse catastrophic backtracking; raises ValueError."""
    try:
        pattern = regex.compile(source, regex.IGNORECASE | regex.UNICODE)
    except regex.error as exc:
        raise ValueError(f"invalid regex: {exc}") from None
    if pattern.search("") is not None and pattern.fullmatch("") is not None:
        raise ValueError("regex matches the empty string")
    if _NESTED_QUANTIFIER_RE.search(source):
        raise ValueError("nested quantifier (e.g. (a+)+) can backtrack catastrophically; use a possessive "
                         "quantifier (a++), an atomic group (?>...) or rewrite it")
    # dynamic probe: long runs of the characters the pattern mentions, with a failing tail
    chars = {c for c in regex.sub(r"\\.", "", source) if c.isalnum()} | {"a", " ", "0"}
    probes = []
    for c in sorted(chars)[:40]:
        probes.append(c * 3000 + "\x00")
        probes.append((c + " ") * 1500 + "\x00")
    for probe in probes:
        try:
            for _ in pattern.finditer(probe, timeout=REGEX_PROBE_TIMEOUT):
                pass
        except TimeoutError:
            raise ValueError(
                f"regex took more than {REGEX_PROBE_TIMEOUT * 1000:.0f} ms on a {len(probe)}-character probe "
                "(catastrophic backtracking); simplify it"
            ) from None
    return pattern


def _parse_txt_term(line: str) -> tuple[str, dict[str, Any], bool]:
    """A .txt line -> (term or regex, fields, is_allow)."""
    allow = False
    if line.startswith("allow:"):
        allow = True
        line = line[len("allow:"):].strip()
    if line.startswith("re:"):
        return line[3:].strip(), {"regex": line[3:].strip()}, allow
    match = None
    if line.startswith("*") and line.endswith("*") and len(line) > 2:
        match, line = "substring", line[1:-1]
    elif line.endswith("*") and len(line) > 1:
        match, line = "prefix", line[:-1]
    elif line.startswith("*") and len(line) > 1:
        match, line = "suffix", line[1:]
    fields: dict[str, Any] = {"term": line.strip()}
    if match:
        fields["match"] = match
    return line.strip(), fields, allow


def _load_txt(path: Path, raw: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": path.stem, "category": DEFAULT_TXT_CATEGORY, "entries": [], "allow": []}
    for lineno, line in enumerate(raw.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#:"):
            key, sep, value = stripped[2:].partition(":")
            key, value = key.strip(), value.strip()
            if not sep or key not in _TXT_DIRECTIVES:
                raise _err(path, f"line {lineno}", f"unknown directive {stripped!r} (known: "
                           f"{', '.join(sorted(_TXT_DIRECTIVES))}, written '#: key: value')")
            doc[key] = float(value) if key == "score" and value.replace(".", "", 1).isdigit() else value
            continue
        if stripped.startswith("#"):
            continue
        _, fields, allow = _parse_txt_term(stripped)
        fields["_line"] = lineno
        doc["allow" if allow else "entries"].append(fields)
    return doc


def _build_entry(path: Path, rl: RuleList, section: str, i: int, item: Any, defaults: dict[str, Any]) -> Entry:
    line = None
    if isinstance(item, dict) and "_line" in item:
        item = dict(item)
        line = item.pop("_line")
    where = f"line {line}" if line else f"{section}[{i}]"
    if isinstance(item, str):
        item = {"term": item}
    if not isinstance(item, dict):
        raise _err(path, where, f"an entry must be a string or a mapping, got {type(item).__name__}")
    unknown = set(item) - _ENTRY_KEYS
    if unknown:
        raise _err(path, where, f"unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                   f"(known: {', '.join(sorted(_ENTRY_KEYS))})")
    has_term, has_regex = "term" in item, "regex" in item
    if has_term == has_regex:
        raise _err(path, where, "an entry needs exactly one of 'term' or 'regex'")
    raw = item["term"] if has_term else item["regex"]
    if not isinstance(raw, (str, int)) or isinstance(raw, bool) or not str(raw).strip():
        raise _err(path, where, f"{'term' if has_term else 'regex'} must be a non-empty string, got {raw!r}")
    raw = str(raw)
    where = f"{where} ({raw!r})"
    score = _check_score(path, where, item.get("score", defaults["score"]))
    match = _check_match(path, where, item.get("match", defaults["match"]))
    join = item.get("join", defaults["join"])
    if not isinstance(join, bool):
        raise _err(path, where, f"join must be true or false, got {join!r}")
    ident = item.get("id")
    if ident is not None and (not isinstance(ident, (str, int)) or not str(ident).strip()):
        raise _err(path, where, f"id must be a non-empty string, got {ident!r}")
    rule_id = f"{rl.name}:{ident if ident is not None else raw}"
    lint_ignore = item.get("lint_ignore", [])
    if isinstance(lint_ignore, str):
        lint_ignore = [lint_ignore]
    if not isinstance(lint_ignore, list) or any(x not in LINT_CHECKS for x in lint_ignore):
        raise _err(path, where, f"lint_ignore must be a list of {', '.join(LINT_CHECKS)}, got {lint_ignore!r}")
    common: dict[str, Any] = dict(
        list_name=rl.name, category=rl.category, term=raw, rule_id=rule_id, match=match, score=score,
        allow=section == "allow", join=join, source=str(path), index=i, lint_ignore=tuple(lint_ignore),
    )
    if has_term:
        if "target" in item:
            raise _err(path, where, "'target' only applies to regex entries")
        norm, runs = normalize_term_runs(raw)
        if not norm:
            raise _err(path, where, "term is empty after normalisation")
        return Entry(kind="term", norm=norm, runs=runs, **common)
    on = item.get("target", "normalized")
    if on not in ("normalized", "original"):
        raise _err(path, where, f"target must be 'normalized' or 'original', got {on!r}")
    source = normalize_regex_source(raw) if on == "normalized" else raw
    try:
        pattern = check_regex(source)
    except ValueError as exc:
        raise _err(path, where, f"bad regex: {exc}") from None
    triggers = regex_triggers(source) if on == "normalized" else None
    return Entry(kind="regex", on=on, pattern=pattern, triggers=triggers, **common)


def load_list(path: str | Path, errors: list[BlocklistError] | None = None) -> RuleList:
    """Parse and validate one list file (YAML or .txt); raises BlocklistError.

    With `errors` (a list), a bad entry is recorded there and skipped instead of raised, so
    `blocklist lint` can report every problem at once; file-level problems still raise.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _err(path, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _err(path, "", f"not UTF-8 ({exc})") from None
    if path.suffix.lower() == ".txt":
        doc = _load_txt(path, raw)
    else:
        try:
            doc = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark else ""
            raise _err(path, where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
        if not isinstance(doc, dict):
            raise _err(path, "", "a YAML list file must be a mapping with at least 'name', 'category' and 'entries'")
        unknown = set(doc) - _LIST_KEYS
        if unknown:
            raise _err(path, "", f"unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                       f"(known: {', '.join(sorted(_LIST_KEYS))})")
        for key in ("name", "category"):
            if key not in doc:
                raise _err(path, key, "missing")
        if "entries" not in doc and "allow" not in doc:
            raise _err(path, "entries", "missing (a list needs 'entries' and/or 'allow')")
    name = str(doc["name"])
    if not _NAME_RE.match(name):
        raise _err(path, "name", f"must be letters, digits, '_', '-' or '.', got {name!r}")
    rl = RuleList(
        name=name,
        category=_check_category(path, doc["category"]),
        path=path,
        action=_check_action(path, doc.get("action")),
        score=_check_score(path, "score", doc.get("score", 1.0)),
        description=str(doc.get("description") or ""),
        language=doc.get("language"),
        scope=str(doc.get("scope", "list")),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    if rl.scope not in ("list", "global"):
        raise _err(path, "scope", f"must be 'list' or 'global', got {rl.scope!r}")
    defaults = {
        "score": rl.score,
        "match": _check_match(path, "match", doc.get("match", "word")),
        "join": doc.get("join", True),
    }
    for section in ("entries", "allow"):
        items = doc.get(section) or []
        if not isinstance(items, list):
            raise _err(path, section, f"must be a list, got {type(items).__name__}")
        built = []
        for i, item in enumerate(items, 1):
            try:
                built.append(_build_entry(path, rl, section, i, item, defaults))
            except BlocklistError as exc:
                if errors is None:
                    raise
                errors.append(exc)
        setattr(rl, section, built)
    return rl


# --- compiling and matching ------------------------------------------------------------------


def _boundary_ok(mode: str, text: str, start: int, end: int) -> bool:
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
                if not _boundary_ok(entry.match, s, start, end):
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


# --- the detector ----------------------------------------------------------------------------


class RulesDetector(BaseDetector):
    """Findings from rule lists. `lists` items: "default" (every shipped list), files or folders.

    The constructor only stores the configuration; `load()` parses, validates and compiles
    everything (raising `BlocklistError` with the file, entry and problem). The engine hot
    reloads by building a new detector, calling `load()`, and swapping it in; the old one stays
    active if `load()` raises.
    """

    name = "rules"

    def __init__(self, lists: Sequence[str | Path] = ("default",), *, regex_timeout: float = DEFAULT_REGEX_TIMEOUT,
                 max_evidence: int = 200) -> None:
        if isinstance(lists, (str, Path)):
            lists = (lists,)
        self.lists_spec: tuple[str | Path, ...] = tuple(lists)
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
            for m in compiled.match(text):
                evidence = m.evidence if len(m.evidence) <= self.max_evidence else m.evidence[: self.max_evidence] + "…"
                findings.append(Finding(category=m.entry.category, score=m.entry.score, source=self.name,
                                        span=m.span, rule_id=m.rule_id, evidence=evidence,
                                        action=actions.get(m.entry.list_name), witness=Witness.LIST))
            out.append(findings)
        return out

    def explain(self, text: str) -> dict[str, Any]:
        """Which entries fired on which spans, with the normalised form (for `blocklist explain`)."""
        compiled = self.compiled
        n = normalize(text)
        matches = compiled.match(text, include_allowed=True, normalized=n)
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
                    "span": list(m.span),
                    "evidence": m.evidence,
                    "normalized_span": list(m.norm_span) if m.norm_span[0] >= 0 else None,
                    "normalized_evidence": n.text[m.norm_span[0]:m.norm_span[1]] if m.norm_span[0] >= 0 else None,
                    "allowed_by": m.allowed_by.rule_id if m.allowed_by else None,
                }
                for m in matches
            ],
        }
