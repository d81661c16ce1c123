"""Sentence spans, so a harmful sentence can be scored on its own and not diluted by the text
around it.

`sentence_spans(text)` cuts after ``.``, ``!``, ``?``, ``…`` (and runs of them, with closing
quotes or brackets) followed by whitespace, and at blank lines or line breaks; it does not cut
after a single capital or a common abbreviation (``M.``, ``Mr.``, ``e.g.``, ``etc.``). Spans
cover the text without its surrounding whitespace; their union is every non-blank character.
"""

from __future__ import annotations

import re

__all__ = ["sentence_ends", "sentence_spans"]

_END_RE = re.compile(r"[.!?…]+[\"'”»)\]]*(?=\s)|\n")
_ABBREVIATIONS = frozenset((
    "mr", "mrs", "ms", "dr", "st", "vs", "etc", "eg", "ie", "e.g", "i.e", "cf", "no", "p", "pp",
    "mme", "mlle", "mm", "m", "vol", "fig", "art", "ch", "env",
))
_WORD_BEFORE_RE = re.compile(r"([\w.]+)\.$")


def _is_abbreviation(text: str, end: int) -> bool:
    m = _WORD_BEFORE_RE.search(text, max(0, end - 12), end)
    if m is None or text[end - 1] != ".":
        return False
    word = m.group(1).lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def sentence_ends(text: str, start: int = 0, stop: int | None = None) -> list[int]:
    """Offsets just past each sentence end found in `text[start:stop]`, in order.

    An end is only known once the whitespace after it is there: a text that stops at "3." or
    "Mr." has not ended a sentence yet, so a stream can tell finished sentences from the one
    still being written.
    """
    stop = len(text) if stop is None else stop
    return [m.end() for m in _END_RE.finditer(text, start, stop)
            if m.group() == "\n" or not _is_abbreviation(text, m.end())]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, in order, surrounding whitespace excluded."""
    spans: list[tuple[int, int]] = []
    start = 0
    for end in sentence_ends(text):
        _append(text, start, end, spans)
        start = end
    _append(text, start, len(text), spans)
    return spans


def _append(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
