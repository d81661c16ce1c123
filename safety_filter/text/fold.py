# ruff: noqa: RUF001  (look-alike characters are the point here)
"""Stages 0 and 1 of the normaliser, per character: HTML entities decoded, then each character folded.

Kept apart from the word-level stages (`safety_filter.text.normalize`) because the model view
(`safety_filter.text.view`) and the regex analysis of the rule lists read characters the same way
without normalising words. The fold of one character is a cached table lookup (`fold_char`); a
whole text folds with one `str.translate` (`fold_text`), or with offsets back to the original
(`fold_with_offsets`). `rewrite` applies edits to a text and its offsets for every stage.
"""

from __future__ import annotations

import html
import re
import unicodedata

from safety_filter.text.confusables import confusables

__all__ = [
    "TAG_FIRST",
    "TAG_LAST",
    "decode_and_fold_with_offsets",
    "decode_entities",
    "decode_entities_with_offsets",
    "fold_char",
    "fold_text",
    "fold_with_offsets",
    "is_invisible",
    "is_pictograph",
    "rewrite",
]

# --- stage 0: HTML entities ---------------------------------------------------------------

# `&#107;`, `&#x6b;`, `&amp;`: decoded (up to three times, for `&amp;#107;`) before anything else
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?")


def _entity(m: re.Match[str]) -> str:
    return html.unescape(m.group())


def decode_entities(text: str) -> str:
    """HTML character references decoded (text only)."""
    for _ in range(3):
        if "&" not in text:
            break
        decoded = _ENTITY_RE.sub(_entity, text)
        if decoded == text:
            break
        text = decoded
    return text


def decode_entities_with_offsets(text: str) -> tuple[str, list[int], list[int]]:
    """`decode_entities` with each output character's (start, end) range in `text`."""
    n = len(text)
    s, starts, ends = text, list(range(n)), list(range(1, n + 1))
    for _ in range(3):
        if "&" not in s:
            break
        ops = [(m.start(), m.end(), html.unescape(m.group())) for m in _ENTITY_RE.finditer(s)]
        ops = [op for op in ops if op[2] != s[op[0]:op[1]]]
        if not ops:
            break
        s, starts, ends = rewrite(s, starts, ends, ops)
    return s, starts, ends


def rewrite(
    s: str, starts: list[int], ends: list[int], ops: list[tuple[int, int, str]]
) -> tuple[str, list[int], list[int]]:
    """Apply sorted, non-overlapping (a, b, repl) ops to `s` and its offsets.

    Each replacement character takes the union range of s[a:b]; deleted characters ('' repl)
    are merged into the range of the kept character before them.
    """
    if not ops:
        return s, starts, ends
    out: list[str] = []
    ost: list[int] = []
    oen: list[int] = []
    pos = 0
    for a, b, repl in ops:
        if a > pos:
            out.append(s[pos:a])
            ost.extend(starts[pos:a])
            oen.extend(ends[pos:a])
        if repl:
            out.append(repl)
            ost.extend([starts[a]] * len(repl))
            oen.extend([ends[b - 1]] * len(repl))
        elif oen:
            oen[-1] = max(oen[-1], ends[b - 1])
        pos = b
    if pos < len(s):
        out.append(s[pos:])
        ost.extend(starts[pos:])
        oen.extend(ends[pos:])
    return "".join(out), ost, oen


# --- stage 1 tables ------------------------------------------------------------------------

# Characters that render as nothing (or as blank) and are used to split words invisibly.
_INVISIBLE_EXTRA = {
    0x034F,  # combining grapheme joiner
    0x115F, 0x1160, 0x3164, 0xFFA0,  # Hangul fillers
    0x2800,  # braille pattern blank
    0x180E,  # Mongolian vowel separator
    0x17B4, 0x17B5,  # Khmer inherent vowels
}
TAG_FIRST, TAG_LAST = 0xE0020, 0xE007E  # tag characters: invisible copies of ASCII 0x20-0x7E

# Letters NFKD does not decompose (French and neighbours), and typographic separators.
_LETTERS_AND_MARKS: dict[str, str] = {
    "œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l",
    "đ": "d", "Đ": "d", "ð": "d", "þ": "th", "ß": "ss", "ħ": "h",
    "’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "‐": "-", "‑": "-", "‒": "-", "–": "-",
    "—": "-", "―": "-", "−": "-", "_": "-",
}


def _latin(ch: str) -> str:
    """A look-alike's Latin letter (lowercase) or digit, from the TR39 table; else `ch`."""
    mapped = _LETTERS_AND_MARKS.get(ch)
    if mapped is not None:
        return mapped
    return confusables().get(ch, ch).lower()


def is_invisible(ch: str) -> bool:
    """Renders as nothing: format characters (zero-width, soft hyphen, bidi), fillers, selectors."""
    cp = ord(ch)
    if cp in _INVISIBLE_EXTRA:
        return True
    cat = unicodedata.category(ch)
    if cat == "Cf":  # zero-width space/joiners, soft hyphen, bidi controls, tags, BOM
        return True
    if cat == "Cc":  # NUL and other controls (whitespace controls are not Cc-only: see below)
        return not ch.isspace()
    return 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF  # variation selectors


def is_pictograph(ch: str) -> bool:
    """Emoji and pictographic symbols: dropped, so "k🔥i🔥l🔥l" reads "kill"."""
    return ord(ch) >= 0x2190 and unicodedata.category(ch) in ("So", "Sk")


def _fold_uncached(ch: str) -> str:
    cp = ord(ch)
    if TAG_FIRST <= cp <= TAG_LAST:
        return chr(cp - 0xE0000).lower()
    if is_invisible(ch):
        return ""
    if ch in confusables():  # before NFKC, which spells parenthesized letters "(a)"
        return confusables()[ch].lower()
    out = []
    for c in unicodedata.normalize("NFKC", ch):
        c = _latin(c)
        for c2 in c.casefold():
            c2 = _latin(c2)
            for c3 in unicodedata.normalize("NFKD", c2):
                if unicodedata.combining(c3) or is_invisible(c3):
                    continue
                if unicodedata.category(c3) in ("Mn", "Me"):
                    continue
                out.append(_latin(c3))
    folded = "".join(out)
    if len(folded) == 1 and is_pictograph(folded):
        return ""
    return folded


class _FoldTable(dict):
    """Lazily filled char -> folded string cache (bounded by the characters actually seen)."""

    def __missing__(self, ch: str) -> str:
        folded = _fold_uncached(ch)
        if len(self) < 200_000:
            self[ch] = folded
        return folded


_FOLD = _FoldTable()


def fold_char(ch: str) -> str:
    """Stage 1 for one character: what it becomes (possibly '' or several characters)."""
    return _FOLD[ch]


# --- whole texts ---------------------------------------------------------------------------
# Stage 1 maps '_' to '-', so the later stages' `\w` never meets an underscore.

_NON_PLAIN_RE = re.compile(r"[^\t-\r\x20-\x7e]+")  # anything but printable ASCII and whitespace
_ASCII_TABLE = {i: "" if is_invisible(chr(i)) else chr(i).lower() for i in range(128)}
_ASCII_TABLE[ord("_")] = "-"
_FOLD.update({chr(i): folded for i, folded in _ASCII_TABLE.items()})


class _FoldOrdTable(dict):
    """ord -> folded string, for str.translate (lazily filled; ASCII prefilled)."""

    def __missing__(self, cp: int) -> str:
        folded = _FOLD[chr(cp)]
        if len(self) < 200_000:
            self[cp] = folded
        return folded


_FOLD_ORD = _FoldOrdTable(_ASCII_TABLE)


class _NotOneToOneTable(dict):
    """ord -> None (deleted by translate) for characters that fold to exactly one character."""

    def __missing__(self, cp: int) -> str | None:
        keep = None if len(_FOLD[chr(cp)]) == 1 else chr(cp)
        if len(self) < 200_000:
            self[cp] = keep
        return keep


_NOT_ONE_TO_ONE = _NotOneToOneTable({i: None if len(f) == 1 else chr(i) for i, f in _ASCII_TABLE.items()})


def fold_text(s: str) -> str:
    """Stage 1 for a whole text (one C-level `str.translate`)."""
    return s.translate(_ASCII_TABLE) if s.isascii() else s.translate(_FOLD_ORD)


def fold_with_offsets(text: str) -> tuple[str, list[int], list[int]]:
    """`fold_text` with each output character's (start, end) range in `text`."""
    n = len(text)
    if _NON_PLAIN_RE.search(text) is None:
        return text.translate(_ASCII_TABLE), list(range(n)), list(range(1, n + 1))
    if not text.translate(_NOT_ONE_TO_ONE):  # every character folds to one: identity map
        return text.translate(_FOLD_ORD), list(range(n)), list(range(1, n + 1))
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    fold = _FOLD
    for m in _NON_PLAIN_RE.finditer(text):
        a, b = m.span()
        if a > pos:
            pieces.append(text[pos:a].translate(_ASCII_TABLE))
            starts.extend(range(pos, a))
            ends.extend(range(pos + 1, a + 1))
        for j in range(a, b):
            f = fold[text[j]]
            if len(f) == 1:
                pieces.append(f)
                starts.append(j)
                ends.append(j + 1)
            elif f:
                pieces.append(f)
                starts.extend([j] * len(f))
                ends.extend([j + 1] * len(f))
            elif ends:
                ends[-1] = j + 1  # dropped invisible/mark: merged into the previous character
        pos = b
    if pos < n:
        pieces.append(text[pos:].translate(_ASCII_TABLE))
        starts.extend(range(pos, n))
        ends.extend(range(pos + 1, n + 1))
    return "".join(pieces), starts, ends


def decode_and_fold_with_offsets(text: str) -> tuple[str, list[int], list[int]]:
    """Stages 0 and 1 with each output character's (start, end) range in `text`."""
    if "&" not in text:
        return fold_with_offsets(text)
    decoded, d_starts, d_ends = decode_entities_with_offsets(text)
    s, starts, ends = fold_with_offsets(decoded)
    return s, [d_starts[i] for i in starts], [d_ends[e - 1] for e in ends]
