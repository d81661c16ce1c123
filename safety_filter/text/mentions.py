# ruff: noqa: RUF002  (typographic quote marks are the point here)
"""Mentions: where a text quotes or reports words instead of using them.

Counter-speech, victims and questions mention hate to reject, report or ask about it ("He said
« les migrants sont des rats », I reported him", "A guy in my class called me a <slur>", "What
does 'RaHoWa' mean?"). A rule list cannot tell a mention from a use; the classifier reads the
framing, so a list entry found in a mention should not decide alone. `Mentions(text).covers(span)`
says whether a span is in one:

- quoted passages that some words of the text frame ("…", “…”, „…“, «…», ‹…›, 「…」, and
  ‘…’ / '…' when the closing mark is not an apostrophe between letters, as in don't or
  l'histoire), at most `MAX_QUOTE_CHARS` long, not across a line break; a text that is nothing
  but a quote is the phrase itself, not a mention;
- the word or two after a reporting frame, in English or French ("called me a", "keeps saying",
  "the word", "m'a traité de", "le mot");
- a claim right after a frame that denies it ("it's not true that", "I refuse to say that",
  "it's a myth that", "c'est faux de dire que", "je refuse de dire que"), however long. Hedges
  are not denials: "I'm not saying ..., but", "I don't think all ...", "je (ne) dis pas que ...,
  je dis juste" introduce implicit hate as often as they deny it.
"""

from __future__ import annotations

import re

__all__ = ["Mentions", "denied", "framed_quotes", "reported"]

MAX_QUOTE_CHARS = 300
MIN_FRAME_WORDS = 3  # words outside the quotes for them to frame the passage
REPORTED_WORDS = 2  # how far a reporting frame reaches: "called me a <word> <word>"

_PAIRS = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c", "\u00ab": "\u00bb", "\u2039": "\u203a",
          "\u300c": "\u300d", "\u2018": "\u2019", "'": "'"}
_APOSTROPHES = ("'", "\u2019")
_QUOTE_MARKS = re.compile("[" + re.escape("".join(_PAIRS)) + "]")
_WORD = re.compile(r"\w+")
_OBJECT = r"(?:me|us|him|her|them|you|my \w+|our \w+)"
_REPORTING = re.compile(
    r"(?:\b(?:called|calls|calling|call)\s+" + _OBJECT + r"(?:\s+an?)?"
    r"|\b(?:keeps?|kept)\s+(?:saying|calling\s+" + _OBJECT + r"(?:\s+an?)?)"
    r"|\bthe\s+(?:word|slur|term|insult)"
    r"|\b(?:traité|traitée|traités|traitées|traite|traitent|traiter|traitait)\s+(?:de|d['\u2019])"
    r"|\bnever\s+call\s+(?:anyone|anybody|someone|people)(?:\s+an?)?"
    r"|\bne\s+traiterai[st]?\s+jamais\s+(?:personne|quelqu['\u2019]un)\s+(?:de|d['\u2019])"
    r"|\b(?:le|ce)\s+(?:mot|terme)"
    r"|\b(?:n['\u2019]arrête|n['\u2019]arrêtent)\s+pas\s+de\s+(?:dire|répéter))"
    r"[\s\"'\u201c\u00ab\u2018]*$",
    re.IGNORECASE,
)
_SAY = r"(?:say|said|claim|believe|think|pretend|accept|agree)"
_DIRE = r"(?:dire|dis|dit|dirai|dirais|prétendre|prétends|penser|pense|pensons|croire|crois|répéter|laisser dire)"
_QUE = r"\s+(?:que|qu['\u2019])"
_DENYING = re.compile(
    r"(?:\b(?:not|never|isn['\u2019]t|wasn['\u2019]t)\s+(?:true|the case)\s+that"
    r"|\b(?:myth|lie|falsehood|fallacy)\s+that"
    r"|\b(?:wrong|false|untrue|a lie)\s+to\s+" + _SAY + r"\s+that"
    r"|\b(?:never|won['\u2019]t|will not|wouldn['\u2019]t|would not|refuse to|refuses to|refusing to"
    r"|nobody should|no one should|nobody can|no one can|stop|quit)\s+(?:ever\s+)?" + _SAY + r"(?:ing)?\s+that"
    r"|\b(?:pas|jamais|plus)\s+vrai" + _QUE
    + r"|\b(?:faux|mensonger|absurde|injuste|inacceptable|honteux|un mensonge)\s+de\s+" + _DIRE + _QUE
    + r"|\b(?:mythe|mensonge|cliché|préjugé|idée reçue)(?:\s+de\s+" + _DIRE + r")?" + _QUE
    + r"|\b(?:refuse|refusons|refusent|refuser)\s+de\s+" + _DIRE + _QUE
    + r"|\b(?:ne|n['\u2019])\s*" + _DIRE + r"\s+jamais" + _QUE
    + r"|\b(?:arrête|arrêtez|arrêtons|arrêter|cessez|cesse)\s+de\s+" + _DIRE + _QUE
    + r"|\bpersonne\s+ne\s+(?:devrait|doit|peut)\s+" + _DIRE + _QUE
    + r")[\s\"'\u201c\u00ab\u2018]*$",
    re.IGNORECASE,
)
DENIED_GAP_WORDS = 2  # words allowed between a denying frame and the claim's listed phrase ("that all ...")
_REACH = 60  # characters before a span searched for a frame


def _is_apostrophe(text: str, i: int) -> bool:
    return text[i] in _APOSTROPHES and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()


def quoted_passages(text: str) -> list[tuple[int, int]]:
    """Inner (start, end) of each quoted passage, outermost only, in order."""
    out: list[tuple[int, int]] = []
    after = 0
    for mark in _QUOTE_MARKS.finditer(text):
        i = mark.start()
        if i < after or (text[i] in _APOSTROPHES and i > 0 and text[i - 1].isalnum()):
            continue
        close, limit = _PAIRS[text[i]], min(len(text), i + 1 + MAX_QUOTE_CHARS)
        for j in range(i + 1, limit):
            if text[j] == "\n":
                break
            if text[j] == close and not _is_apostrophe(text, j):
                out.append((i + 1, j))
                after = j + 1
                break
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


def reported(text: str, span: tuple[int, int]) -> bool:
    """Whether `span` is among the `REPORTED_WORDS` words right after a reporting frame."""
    words = [w.start() for w in _WORD.finditer(text, span[0], span[1])] or [span[0]]
    before = [w.start() for w in _WORD.finditer(text, max(0, span[0] - _REACH), span[0])]
    for k in range(REPORTED_WORDS - len(words) + 1):  # the frame may sit k words before the span
        if k > len(before):
            break
        at = before[-k] if k else span[0]
        if _REPORTING.search(text, max(0, at - _REACH), at):
            return True
    return False


def denied(text: str, span: tuple[int, int]) -> bool:
    """Whether `span` starts at most `DENIED_GAP_WORDS` words after a frame that denies the claim."""
    before = [w.start() for w in _WORD.finditer(text, max(0, span[0] - _REACH), span[0])]
    for k in range(min(DENIED_GAP_WORDS, len(before)) + 1):
        at = before[-k] if k else span[0]
        if _DENYING.search(text, max(0, at - _REACH), at):
            return True
    return False


class Mentions:
    """The mentions of one text, asked span by span (quoted passages are found once, if asked)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._quotes: list[tuple[int, int]] | None = None

    def covers(self, span: tuple[int, int]) -> bool:
        if self._quotes is None:
            self._quotes = framed_quotes(self.text)
        return inside(span, self._quotes) or reported(self.text, span) or denied(self.text, span)


def inside(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    """Whether `span` lies within one of `spans`."""
    return any(start <= span[0] and span[1] <= end for start, end in spans)
