# ruff: noqa: RUF001  (typographic apostrophes are the point here)
"""The one language guesser: English or French, from function words and French accents.

Cheap enough for every text (a regex and two set look-ups per word); used to pick the spaCy
model for presidio and anything else that needs to know which of the two languages it reads.
"""

from __future__ import annotations

import re

__all__ = ["LANGUAGES", "guess_language"]

LANGUAGES = ("en", "fr")

_FR_TEXT = (
    "le la les des une est et dans pour que qui pas sur avec sont mais nous vous ils elles je tu "
    "il elle du au aux ce cette ces mon ma mes ton ta son sa leur très être avoir fait été c'est "
    "n'est j'ai bonjour merci comment quoi stp svp"
)
_FR_WORDS = frozenset(_FR_TEXT.split())
_EN_TEXT = (
    "the and is are was were of to in for that with this it on be have has not but you they we "
    "i he she my your his her their what which who hello thanks please a an how can"
)
_EN_WORDS = frozenset(_EN_TEXT.split())
_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_FR_LETTERS = frozenset("éèêàçùœ")
_SAMPLE = 4000  # characters read: enough to decide, bounded on long texts


def guess_language(text: str) -> str:
    """'fr' or 'en' (ties and empty text: 'en')."""
    sample = text[:_SAMPLE].lower()
    words = _WORD_RE.findall(sample)
    fr = sum(w in _FR_WORDS for w in words) + sum(ch in _FR_LETTERS for ch in sample) * 0.5
    en = sum(w in _EN_WORDS for w in words)
    return "fr" if fr > en else "en"
