# ruff: noqa: RUF002  (typographic quote marks are the point here)
"""Quoted passages, so a listed phrase that is quoted (mentioned) can be told from one that is used.

Counter-speech and questions quote hate to reject or ask about it ("He said « les migrants sont
des rats », I reported him", "What does 'RaHoWa' mean?"). A rule list cannot tell a mention from
a use; the classifier reads the framing. `framed_quotes(text)` returns the inner spans of the
quoted passages that some words of the text frame: a text that is nothing but a quote is the
phrase itself, and gets no such span.

Quote pairs: "…", “…”, „…“, «…», ‹…›, 「…」, and ‘…’ / '…' when the closing mark is not an
apostrophe between letters (don't, l'histoire). A passage is at most `MAX_QUOTE_CHARS` long
and does not cross a line break.
"""

from __future__ import annotations

import re

__all__ = ["framed_quotes"]

MAX_QUOTE_CHARS = 300
MIN_FRAME_WORDS = 3  # words outside the quotes for them to frame the passage

_PAIRS = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c", "\u00ab": "\u00bb", "\u2039": "\u203a",
          "\u300c": "\u300d", "\u2018": "\u2019", "'": "'"}
_APOSTROPHES = ("'", "\u2019")
_WORD = re.compile(r"\w+")


def _is_apostrophe(text: str, i: int) -> bool:
    return text[i] in _APOSTROPHES and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()


def quoted_passages(text: str) -> list[tuple[int, int]]:
    """Inner (start, end) of each quoted passage, outermost only, in order."""
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(text):
        close = _PAIRS.get(text[i])
        if close is None or _is_apostrophe(text, i) or (text[i] in _APOSTROPHES and i > 0 and text[i - 1].isalnum()):
            i += 1
            continue
        limit = min(len(text), i + 1 + MAX_QUOTE_CHARS)
        j = i + 1
        while j < limit and text[j] != "\n" and not (text[j] == close and not _is_apostrophe(text, j)):
            j += 1
        if j < limit and text[j] == close:
            out.append((i + 1, j))
            i = j + 1
        else:
            i += 1
    return out


def framed_quotes(text: str) -> list[tuple[int, int]]:
    """The quoted passages of `text` (inner spans), if the words outside them frame them."""
    passages = quoted_passages(text)
    if not passages:
        return []
    outside, last = [], 0
    for start, end in passages:
        outside.append(text[last : start - 1])
        last = end + 1
    outside.append(text[last:])
    frame_words = sum(len(_WORD.findall(piece)) for piece in outside)
    return passages if frame_words >= MIN_FRAME_WORDS else []


def inside(span: tuple[int, int], passages: list[tuple[int, int]]) -> bool:
    """Whether `span` lies within one of `passages`."""
    return any(start <= span[0] and span[1] <= end for start, end in passages)
