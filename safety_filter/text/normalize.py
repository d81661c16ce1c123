"""The one text normaliser, used on rule-list entries and on the texts they are matched against.

`normalize(text)` returns a `Normalized` whose `.text` defeats the usual evasions and whose
`.original_span(start, end)` maps a span of `.text` back to the characters of the original it
came from. Both list entries and inspected texts go through this same function, so an entry
matches every spelling that normalises to the same string.

Stages, each a single pass driven by tables or one pre-compiled regex (never one regex per term):

0. **HTML entities** decoded (``&#107;``, ``&#x6b;``, ``&amp;``; up to three levels).
1. **fold** (per character, cached table): NFKC (fullwidth, mathematical letters, ligatures,
   superscripts), look-alikes mapped to Latin from Unicode's TR39 confusables data
   (`safety_filter.text.confusables`: Cyrillic, Greek, Armenian, Lisu, small capitals, negative
   circled/squared and parenthesized letters, regional indicators), casefold, accents stripped
   (NFKD then combining marks dropped; ``œ``, ``æ``, ``ø``, ``ł``... mapped explicitly), tag
   characters decoded to the ASCII they hide, invisible characters dropped (format characters
   such as zero-width space/joiner, soft hyphen, bidi controls, variation selectors; NUL and
   other controls; Hangul fillers, braille blank) and emoji dropped (``k🔥i🔥l🔥l`` is ``kill``).
2. **join spaced letters**: three or more single word characters separated by one to three of
   whitespace or `` .-_*·•~`` (``n a z i``, ``n.a.z.i``, ``n-4-z-1``, ``k\ni\nl\nl``) become one
   word; a gap longer than (or unlike) the run's usual one separates words, so
   ``k i l l  a l l  x`` gives ``kill all x``, not ``killallx``.
3. **squeeze separators**: runs of whitespace, ``-`` and ``_`` become one space, so a
   multi-word entry matches across line breaks, double spaces and hyphens.
4. **leetspeak**, inside a token that also contains a letter: ``0 1 3 4 5 6 7 9 @ $ € ! | ¡ £ ¢
   ¥ §`` map to ``o i e a s g t g a s e i l i l c y s``. Tokens without a letter (``1488``,
   ``2024``, ``$100``) are left alone, and a trailing ``!`` or ``|`` is punctuation, not a letter
   (``hate!`` stays ``hate!``). (``1`` also stands for ``l``: the matcher adds an
   ``l``-as-``i`` variant of list entries.)
5. **collapse repeated letters**: a run of the same letter becomes one (``haaate`` -> ``hate``,
   ``hello`` -> ``helo``), and its length is remembered (`Normalized.runs`): the matcher
   requires a text run to equal the entry's or be a clear stretch of it (3+), so ``nigger``
   does not match the country ``Niger`` nor ``god`` match ``good``. Digits are not collapsed
   (``1488`` stays ``1488``).

`normalize(text, fuse=True)` is a second view that also removes ``.``, ``-`` and ``_`` between
letters (``ki-ll``, ``ki.ll``, ``ki_ll``): the rules match it too when such a split occurs.

Every character of `.text` carries the (start, end) range of original characters it stands
for; deleted characters (separators, invisibles, repeated letters) are merged into the range of
the kept character before them, so a span always covers the whole obfuscated spelling.

Stages 0 and 1 (characters) live in `safety_filter.text.fold`; this module holds the word-level
stages and the public API, and re-exports the character-level names it always exported.
"""

from __future__ import annotations

import re

from safety_filter.text.fold import (
    decode_and_fold_with_offsets,
    decode_entities,
    decode_entities_with_offsets,
    fold_char,
    fold_text,
    is_invisible,
    is_pictograph,
    rewrite,
)

__all__ = [
    "Normalized",
    "decode_entities",
    "decode_entities_with_offsets",
    "fold_char",
    "gap_ops",
    "has_joiners",
    "is_invisible",
    "is_pictograph",
    "is_word_char",
    "normalize",
    "normalize_term",
    "normalize_term_runs",
    "normalize_text",
    "rewrite",
    "runs_compatible",
]

# --- stages 2-5 patterns -------------------------------------------------------------------
# Stage 1 maps '_' to '-', so below `\w` (letters, digits, '_') never meets an underscore and
# means "letter or digit". The stdlib `re` engine is used: it is about twice as fast as
# `regex` on these simple patterns.

_LEET_DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "9": "g"}
_LEET_SYMBOLS = {"@": "a", "$": "s", "€": "e", "!": "i", "|": "l", "¡": "i", "£": "l", "¢": "c", "¥": "y",
                 "§": "s"}
_LEET = {**_LEET_DIGITS, **_LEET_SYMBOLS}
_LEET_TRANS = str.maketrans(_LEET)
_TRAILING_PUNCT = "!|"
_WORDISH_SYMBOLS = "".join(_LEET_SYMBOLS)

_W = rf"[\w{_WORDISH_SYMBOLS}]"  # a word-ish character, leet symbols included
_SEP = r"[\s.\-*·•~]"
# 3+ single word characters each separated by 1-3 separators: n a z i / n.a.z.i / n-4-z-1
_SPACED_RE = re.compile(rf"(?<!{_W}){_W}(?:{_SEP}{{1,3}}{_W}(?!{_W})){{2,}}")
_SEP_RE = re.compile(rf"{_SEP}+")
# a '.' or '-' (or '_', folded to '-') between two letters: "ki-ll", "ki.ll" (the fused view)
_JOINER_RE = re.compile(r"(?<=[^\W\d_])[.\-](?=[^\W\d_])")
_RAW_JOINER_RE = re.compile(r"[^\W\d_][.\-_\u2010-\u2015][^\W\d_]")
_LEET_CHAR_RE = re.compile(rf"[{''.join(_LEET)}]")
_HAS_LETTER_RE = re.compile(r"[^\W\d]")
_REPEAT_RE = re.compile(r"([^\W\d])\1+")
_REPEAT_FAST_RE = re.compile(r"([^\W\d])(?=\1)")  # same result, literal replacement (no template)
_TOKEN_END_RE = re.compile(_W + "*")
# runs of whitespace/'-' that are not already a single space (a lone " " is left alone)
_SQUEEZE_RE = re.compile(r"[\s\-]{2,}|[^\S ]|-")


def has_joiners(text: str) -> bool:
    """Whether a letter-'.'/'-'/'_'-letter split occurs, so the fused view is worth matching too."""
    return _RAW_JOINER_RE.search(text) is not None


def is_word_char(ch: str) -> bool:
    """Word characters for whole-word checks on normalised text."""
    return ch.isalnum()


class Normalized:
    """A normalised text and a map from its characters back to the original.

    The map is computed on first use of `original_span` (most texts match nothing, and the
    text-only path runs in C-level passes), by the same stages with offsets tracked.
    """

    __slots__ = ("_ends", "_runs", "_starts", "fuse", "original", "text")

    def __init__(self, original: str, text: str, starts: list[int] | None = None, ends: list[int] | None = None,
                 runs: dict[int, int] | None = None, *, fuse: bool = False):
        self.original = original
        self.fuse = fuse
        self.text = text
        self._starts = starts
        self._ends = ends
        self._runs = runs

    def __repr__(self) -> str:
        return f"Normalized(text={self.text!r})"

    def _map(self) -> tuple[list[int], list[int]]:
        if self._starts is None or self._ends is None or self._runs is None:
            text, starts, ends, runs = _normalize_with_offsets(self.original, fuse=self.fuse)
            if text != self.text:  # pragma: no cover - the two paths must agree
                raise AssertionError(f"normaliser paths disagree: {text!r} != {self.text!r}")
            self._starts, self._ends, self._runs = starts, ends, runs
        return self._starts, self._ends

    @property
    def runs(self) -> dict[int, int]:
        """{index in `.text`: how many times that letter was repeated in a row} (only runs > 1)."""
        self._map()
        assert self._runs is not None
        return self._runs

    @property
    def starts(self) -> list[int]:
        return self._map()[0]

    @property
    def ends(self) -> list[int]:
        return self._map()[1]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a span [start, end) of `.text` to the span of the original text it came from."""
        n = len(self.text)
        if not 0 <= start <= end <= n:
            raise ValueError(f"span ({start}, {end}) outside normalised text of length {n}")
        starts, ends = self._map()
        if start == end:
            if start < n:
                pos = starts[start]
            elif n:
                pos = ends[n - 1]
            else:
                pos = len(self.original)
            return pos, pos
        return starts[start], ends[end - 1]

    def original_text(self, start: int, end: int) -> str:
        s, e = self.original_span(start, end)
        return self.original[s:e]


def _leet_token(tok: str) -> str:
    if not _HAS_LETTER_RE.search(tok):
        return tok
    # a trailing run of '!'/'|' is punctuation, not letters
    stripped = tok.rstrip(_TRAILING_PUNCT)
    return stripped.translate(_LEET_TRANS) + tok[len(stripped):]


def _leet_pass(s: str) -> str:
    """Stage 3: rewrite the tokens that contain a leet character (token = run of word chars)."""
    out: list[str] = []
    copied = 0
    scanned = 0
    for m in _LEET_CHAR_RE.finditer(s):
        i = m.start()
        if i < scanned:
            continue
        a = i
        while a > scanned and (s[a - 1].isalnum() or s[a - 1] in _WORDISH_SYMBOLS):
            a -= 1
        b = _TOKEN_END_RE.match(s, i).end()  # type: ignore[union-attr]
        scanned = b
        tok = s[a:b]
        new = _leet_token(tok)
        if new != tok:
            out.append(s[copied:a])
            out.append(new)
            copied = b
    if not out:
        return s
    out.append(s[copied:])
    return "".join(out)


def gap_ops(run: str, sep_re: re.Pattern[str] = _SEP_RE) -> list[tuple[int, int, str]]:
    """How to rewrite the gaps of a spaced-letter run: the usual gap joins letters, a longer or
    different one separates words ("k i l l  a l l" -> "kill all", "n-a-z-i s-c-u-m" too).

    A run whose gaps all differ has no usual gap and is left alone (no ops): it is ordinary
    text such as French "y a-t-il", not spaced letters. Ties go to the shorter, then the first gap.
    """
    gaps = [(m.start(), m.end(), m.group()) for m in sep_re.finditer(run)]
    seen = [g for _, _, g in gaps]
    usual = max(seen, key=lambda g: (seen.count(g), -len(g)))  # max keeps the first of equals
    if seen.count(usual) == 1:
        return []
    return [(a, b, "" if g == usual else " ") for a, b, g in gaps]


def _join_spaced(m: re.Match[str]) -> str:
    run = m.group()
    ops = gap_ops(run)
    if not ops:
        return run
    if all(not repl for _, _, repl in ops):
        return _SEP_RE.sub("", run)
    out, pos = [], 0
    for a, b, repl in ops:
        out.append(run[pos:a] + repl)
        pos = b
    out.append(run[pos:])
    return "".join(out)


def _pre_collapse(text: str, *, fuse: bool = False) -> str:
    """Stages 0 to 5 (text only)."""
    s = decode_entities(text) if "&" in text else text
    s = fold_text(s)
    if fuse:
        s = _JOINER_RE.sub("", s)
    if len(s) >= 5:
        s = _SPACED_RE.sub(_join_spaced, s)
    s = _squeeze_fast(s)
    return _leet_pass(s)


_DOUBLED_ASCII = tuple((c + c, c) for c in "abcdefghijklmnopqrstuvwxyz")


def _collapse_fast(s: str) -> str:
    """Stage 5, text only: str.replace per doubled ASCII letter (memchr speed), regex otherwise."""
    if not s.isascii():
        return _REPEAT_FAST_RE.sub("", s)
    for pair, single in _DOUBLED_ASCII:
        while pair in s:
            s = s.replace(pair, single)
    return s


def _squeeze_fast(s: str) -> str:
    """Stage 2, text only: the same result as _SQUEEZE_RE.sub(" ", s) via str.split()."""
    if "-" in s:
        s = s.replace("-", " ")
    parts = s.split()
    if not parts:
        return " " if s else s
    out = " ".join(parts)
    if s[0].isspace():
        out = " " + out
    if s[-1].isspace():
        out += " "
    return out


def normalize_text(text: str, *, fuse: bool = False) -> str:
    """The normalised text only (C-level passes); identical to `normalize(text).text`."""
    return _collapse_fast(_pre_collapse(text, fuse=fuse))


def _runs(pre: str) -> tuple[str, dict[int, int]]:
    """Stage 5 with the run lengths: (collapsed text, {index in it: run length > 1})."""
    runs: dict[int, int] = {}
    deleted = 0
    for m in _REPEAT_RE.finditer(pre):
        a, b = m.span()
        runs[a - deleted] = b - a
        deleted += b - a - 1
    return _collapse_fast(pre), runs


def _normalize_with_offsets(text: str, *, fuse: bool = False) -> tuple[str, list[int], list[int], dict[int, int]]:
    s, starts, ends = decode_and_fold_with_offsets(text)  # stages 0 and 1

    if fuse:  # the fused view: "ki-ll", "ki.ll" -> "kill"
        s, starts, ends = rewrite(s, starts, ends, [(m.start(), m.end(), "") for m in _JOINER_RE.finditer(s)])

    # stage 2: join letters separated by spaces, dots, dashes... (a longer gap separates words)
    if len(s) >= 5:
        ops: list[tuple[int, int, str]] = []
        for m in _SPACED_RE.finditer(s):
            base = m.start()
            ops.extend((base + a, base + b, repl) for a, b, repl in gap_ops(m.group()))
        s, starts, ends = rewrite(s, starts, ends, ops)

    # stage 3: whitespace and '-' runs become one space
    ops = [(m.start(), m.end(), " ") for m in _SQUEEZE_RE.finditer(s)]
    s, starts, ends = rewrite(s, starts, ends, ops)

    # stage 4: leetspeak inside tokens that contain a letter (1:1, spans unchanged)
    s = _leet_pass(s)

    # stage 5: collapse runs of the same letter, remembering their lengths
    ops = []
    runs: dict[int, int] = {}
    deleted = 0
    for m in _REPEAT_RE.finditer(s):
        a, b = m.span()
        ops.append((a + 1, b, ""))
        runs[a - deleted] = b - a
        deleted += b - a - 1
    s, starts, ends = rewrite(s, starts, ends, ops)
    return s, starts, ends, runs


def normalize(text: str, *, offsets: bool = False, fuse: bool = False) -> Normalized:
    """Normalise `text` (see the module docstring) keeping a map back to the original.

    The map is built lazily on the first `original_span` call, or now with `offsets=True`.
    `fuse=True` also removes '.', '-' and '_' between letters ("ki-ll" -> "kill"): a second view
    the rules match when `has_joiners(text)`, since the first keeps "ex-wife" as two words.
    """
    if offsets:
        s, starts, ends, runs = _normalize_with_offsets(text, fuse=fuse)
        return Normalized(text, s, starts, ends, runs, fuse=fuse)
    return Normalized(text, normalize_text(text, fuse=fuse), fuse=fuse)


def normalize_term_runs(term: str, *, join: bool = False, l_as_i: bool = False) -> tuple[str, dict[int, int]]:
    """A list entry's normalised form and its letter runs longer than one ({index: length}).

    `join=True` gives the form with the spaces between words removed (``#whitegenocide``).
    `l_as_i=True` gives the form an ``l`` written as ``1`` takes in a text: leetspeak reads
    ``1`` as ``i``, so ``ki11`` normalises to ``kiii``; matching this variant too catches it.
    """
    pre = _pre_collapse(term).strip()
    if join:
        pre = pre.replace(" ", "")
    if l_as_i:
        pre = pre.replace("l", "i")
    return _runs(pre)


def runs_compatible(text_runs: dict[int, int], start: int, entry_runs: dict[int, int], length: int,
                    *, open_start: bool = False, open_end: bool = False) -> bool:
    """Whether a match of an entry at `start` respects letter repetition.

    Each letter run of the text must equal the entry's (``nigger`` does not match ``Niger``,
    ``god`` does not match ``good``), or be a clear stretch of it: three or more and longer
    (``haaate`` matches ``hate``, ``niggger`` matches ``nigger``). `open_start`/`open_end`: the
    match may start/end inside a word (substring, prefix, suffix entries), so the text run at
    that edge may also be longer than the entry's (``vrob*`` matches ``vrobbing``).
    """
    if not text_runs and not entry_runs:
        return True
    last = length - 1
    for k in range(length):
        tr = text_runs.get(start + k, 1)
        er = entry_runs.get(k, 1)
        if tr == er or (tr >= 3 and tr > er):
            continue
        if tr > er and ((k == 0 and open_start) or (k == last and open_end)):
            continue
        return False
    return True


def normalize_term(term: str) -> str:
    """Normalise a list entry: the same pipeline, outer spaces stripped."""
    return normalize_text(term).strip()
