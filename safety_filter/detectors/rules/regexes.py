"""Regex entries: bring their letters to the normalised text, find prefilter literals, refuse
patterns that backtrack catastrophically.

`regex_triggers` reads the pattern with the standard library's private `re._parser` (there is no
public parser); anything it does not understand means "no prefilter: always run the regex".
"""

from __future__ import annotations

import re
from typing import Any

import regex

from safety_filter.text.fold import fold_char

# nested quantifier: a group that contains a quantifier, itself quantified: (a+)+  (\w*x)*  (a{2,})+
# (possessive quantifiers a++ and atomic groups (?>...) do not backtrack and are not flagged)
_QUANT = r"(?:(?<![+*?}\\])[+*]|\{\d*,\d*\})(?!\+)"
_NESTED_QUANTIFIER_RE = re.compile(rf"\((?!\?>)(?:[^()\\]|\\.)*{_QUANT}(?:[^()\\]|\\.)*\){_QUANT}")
REGEX_PROBE_TIMEOUT = 0.05


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
