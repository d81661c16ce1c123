# ruff: noqa: RUF001  (typographic apostrophes are the point here)
"""The model view: the text a classifier or NER model reads, with its evasions undone.

`model_view(text)` keeps what a model needs to read natural text (case, accents, word spacing,
punctuation, emoji between words) and undoes what only hides words from it:

* HTML entities decoded; tag characters decoded to the ASCII they hide;
* invisible characters (zero-width, soft hyphen, bidi controls, NUL...) dropped, and emoji,
  '_' and '.' inside a word ("k🔥i🔥l🔥l", "sho_uld", "Na.zis");
* stacked combining marks dropped, an accent that composes with its letter kept (``e`` +
  U+0301 reads ``é``);
* look-alikes folded to the Latin letter they imitate (TR39 data; case kept where the
  look-alike has one, lowercase for caseless ones such as Lisu or ``🅐``);
* spaced-out letters joined into words (``k i l l  a l l`` -> ``kill all``);
* leetspeak read inside words (``k1ll``, ``7h3``), codes and quantities left alone (``mp3``,
  ``5G``, ``1st``) unless the whole text is written in leet.

The result is a `Normalized`, so spans found on the view map back to the original with
`original_span`. `lower_fold(text)` is the length-preserving lowercase, accent-free form that
pattern lists are written against (the NCII signals), applied to the view.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right

from safety_filter.text.confusables import confusables
from safety_filter.text.fold import (
    TAG_FIRST,
    TAG_LAST,
    decode_entities_with_offsets,
    is_invisible,
    is_pictograph,
    rewrite,
)
from safety_filter.text.normalize import Normalized, gap_ops

__all__ = ["lower_fold", "model_view", "view_index"]

_W = r"(?:[^\W_]|[@$!|])"
_SEP = r"[\s._\-*·•~]"
_SEP_RE = re.compile(rf"{_SEP}+")
_SPACED_RE = re.compile(rf"(?<!{_W}){_W}(?:{_SEP}{{1,3}}{_W}(?!{_W})){{2,}}")
_LEET_VIEW = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "9": "g", "@": "a",
                            "$": "s", "!": "i", "|": "l"})
# a word mixing letters and leet characters (k1ll, 4ll, 7h3, n4z15), read as letters unless it has
# the shape of a code or a quantity: mp3, win10, h264, 5G, 4K, 3D, 1080p, 1st, 2nd, 3e, 10kg
_LEET_TOKEN_RE = re.compile(r"(?<![\w@$!|])(?=[\w@$!|]*[^\W\d_])(?=[\w@$!|]*[013457@$!|9])[\w@$!|]+")
_CODE_RE = re.compile(r"[^\W\d_]{1,3}\d+|\d+(?:st|nd|rd|th|e|er|eme|ème|k|g|d|p|x|s|h|m|cm|mm|km|"
                      r"kg|min|px|gb|mb|go|mo|ko|am|pm)?")


HEAVY_LEET_TOKENS = 3  # this many unambiguous leet words: the text is written in leet throughout


def _read_leet(s: str) -> str:
    """Leet words read as letters (1:1). Code-shaped words (``t0``, ``3x``, ``mp3``) are read too
    when the text holds `HEAVY_LEET_TOKENS` unambiguous ones: then it is leet, not a spec sheet."""
    words = list(_LEET_TOKEN_RE.finditer(s))
    if not words:
        return s
    clear = [not _CODE_RE.fullmatch(m.group().lower().rstrip("!|")) for m in words]
    heavy = sum(clear) >= HEAVY_LEET_TOKENS
    out, pos = [], 0
    for m, unambiguous in zip(words, clear, strict=True):
        if unambiguous or heavy:
            word = m.group()
            stripped = word.rstrip("!|")  # a trailing '!' is punctuation
            out.append(s[pos:m.start()] + stripped.translate(_LEET_VIEW) + word[len(stripped):])
            pos = m.end()
    out.append(s[pos:])
    return "".join(out)


def _view_char(ch: str) -> str:
    """One character of the view: '' (invisible), a Latin stand-in, or itself."""
    cp = ord(ch)
    if TAG_FIRST <= cp <= TAG_LAST:
        return chr(cp - 0xE0000)
    if is_invisible(ch):
        return ""
    mapped = confusables().get(ch)
    if mapped is not None:  # a caseless look-alike (Lisu, 🅐, ⒜) says nothing of case: lowercase
        return mapped if ch.lower() != ch.upper() else mapped.lower()
    compat = unicodedata.normalize("NFKC", ch)
    if compat != ch and compat.isascii() and compat.isalnum():  # fullwidth, mathematical, circled
        return compat if unicodedata.category(ch).startswith("L") else compat.lower()
    return ch


class _ChangedTable(dict):
    """ord -> None (deleted by translate) for characters the view leaves as they are."""

    def __missing__(self, cp: int) -> str | None:
        ch = chr(cp)
        same = (_view_char(ch) == ch and unicodedata.category(ch) not in ("Mn", "Me")
                and not is_pictograph(ch))
        kept = None if same else ch
        if len(self) < 100_000:
            self[cp] = kept
        return kept


_CHANGED = _ChangedTable({i: None if (chr(i).isprintable() or chr(i).isspace()) and chr(i) != "&" else chr(i)
                          for i in range(128)})
# cheap prefilters (a leading character class lets the regex engine scan fast)
_INSIDE_WORD_RE = re.compile(r"(?<=[^\W\d_])[._](?=[^\W\d_])")
_SPACED_HINT_RE = re.compile(rf"{_SEP}{_W}{_SEP}")


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_WORD_RE = re.compile(r"\w+")


def _fold_view(text: str) -> tuple[str, list[int], list[int]]:
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    caseless = False  # a caseless look-alike was read
    for i, ch in enumerate(text):
        if ch.isascii():
            if ch.isprintable() or ch.isspace():
                out.append(ch)
                starts.append(i)
                ends.append(i + 1)
            elif ends:
                ends[-1] = i + 1
            continue
        if unicodedata.category(ch) in ("Mn", "Me") and out:
            composed = unicodedata.normalize("NFC", out[-1] + ch)
            if len(composed) == 1:  # an accent on its letter
                out[-1] = composed
            ends[-1] = i + 1  # otherwise a stacked mark (zalgo, strike-through): dropped
            continue
        piece = _view_char(ch)
        if not piece:
            if ends:
                ends[-1] = i + 1
            continue
        caseless = caseless or _is_caseless_lookalike(ch)
        for c in piece:
            out.append(c)
            starts.append(i)
            ends.append(i + 1)
    folded = "".join(out)
    if caseless:
        folded = _lower_caseless_words(text, folded, starts)
    return folded, starts, ends


def _is_caseless_lookalike(ch: str) -> bool:
    return not ch.isascii() and ch.lower() == ch.upper() and confusables().get(ch) is not None


def _lower_caseless_words(text: str, folded: str, starts: list[int]) -> str:
    """A word spelled in caseless look-alikes says nothing of case: its ASCII capitals (letters
    the script lacks, such as Q in Lisu) are lowercased too, as the look-alikes are (1:1)."""
    pieces, pos = [], 0
    for m in _WORD_RE.finditer(folded):
        if any(_is_caseless_lookalike(text[starts[k]]) for k in range(m.start(), m.end())):
            pieces.append(folded[pos:m.start()] + m.group().translate(_ASCII_LOWER))
            pos = m.end()
    pieces.append(folded[pos:])
    return "".join(pieces)


def _inside_word_ops(s: str, pictographs: bool) -> list[tuple[int, int, str]]:
    """Emoji, '_' and '.' between two letters are dropped ("k🔥i🔥l🔥l", "sho_uld", "Na.zis").

    ('-' is kept: "ex-wife" is two words; the rules match the fused spelling of hyphen splits.)
    """
    ops = [(m.start(), m.end(), "") for m in _INSIDE_WORD_RE.finditer(s)]
    if pictographs:
        ops.extend((i, i + 1, "") for i in range(1, len(s) - 1)
                   if is_pictograph(s[i]) and s[i - 1].isalpha() and s[i + 1].isalpha())
        ops.sort()
    return ops


def model_view(text: str) -> Normalized:
    """The view of `text` a model reads (see the module docstring), mapped back to `text`.

    Each step runs only when a C-level pass says it has something to do, so the common text
    costs a few regex scans; offsets stay identity ranges until a step changes the length.
    """
    n = len(text)
    s: str = text
    starts: list[int] | range = range(n)
    ends: list[int] | range = range(1, n + 1)
    folds = bool(text.translate(_CHANGED))  # some character is decoded, dropped or folded
    if folds:
        if "&" in text:
            decoded, d_starts, d_ends = decode_entities_with_offsets(text)
            s, f_starts, f_ends = _fold_view(decoded)
            starts, ends = [d_starts[i] for i in f_starts], [d_ends[e - 1] for e in f_ends]
        else:
            s, starts, ends = _fold_view(text)
    s, starts, ends = rewrite(s, starts, ends, _inside_word_ops(s, pictographs=folds))  # type: ignore[arg-type]
    if len(s) >= 5 and _SPACED_HINT_RE.search(s):
        ops: list[tuple[int, int, str]] = []
        for m in _SPACED_RE.finditer(s):
            base = m.start()
            ops.extend((base + a, base + b, repl) for a, b, repl in gap_ops(m.group(), _SEP_RE))
        s, starts, ends = rewrite(s, starts, ends, ops)
    s = _read_leet(s)  # 1:1, offsets unchanged
    return Normalized(text, s, starts, ends, {})


def view_index(view: Normalized, position: int) -> int:
    """The index in `view.text` of the character that covers `position` of the original."""
    return max(0, bisect_right(view.starts, position) - 1)


_FOLD_EXTRA = {"œ": "o", "Œ": "o", "æ": "a", "Æ": "a", "’": "'", "‘": "'", "ʼ": "'", "`": "'",
               "‐": "-", "‑": "-", "–": "-", "—": "-", "ß": "s"}


class _LowerTable(dict):
    """ord -> the lowercase, accent-free character, filled on first sight (for str.translate)."""

    def __missing__(self, cp: int) -> str:
        ch = chr(cp)
        if ch in _FOLD_EXTRA:
            out = _FOLD_EXTRA[ch]
        else:
            base = unicodedata.normalize("NFKD", ch)
            low = ("".join(c for c in base if not unicodedata.combining(c)) or ch).lower()
            out = low[0] if low else ch
        if len(self) < 100_000:
            self[cp] = out
        return out


_LOWER = _LowerTable()


def lower_fold(text: str) -> str:
    """Lower case, accents stripped, one character out per character in (spans stay valid).

    ("œ" folds to "o", so patterns are written ``s(?:oe|o)ur``.)
    """
    if text.isascii():
        return text.lower()
    return text.translate(_LOWER)
