"""Obfuscation families: each turns a sentence into a spelling that reads the same to a person.

Used by tests/test_obfuscation.py (every detector must score the obfuscated sentence about as
it scores the clean one) and by the measurement in its module docstring. Deterministic: the
same sentence always gives the same obfuscation. Look-alike tables are written as code points
so the source stays plain ASCII.
"""

from __future__ import annotations

from collections.abc import Callable

_CYRILLIC = {"a": 0x430, "c": 0x441, "e": 0x435, "o": 0x43E, "p": 0x440, "x": 0x445, "y": 0x443, "i": 0x456,
             "s": 0x455, "j": 0x458, "h": 0x4BB, "A": 0x410, "B": 0x412, "E": 0x415, "K": 0x41A, "M": 0x41C,
             "H": 0x41D, "O": 0x41E, "P": 0x420, "C": 0x421, "T": 0x422, "X": 0x425}
_GREEK = {"o": 0x3BF, "a": 0x3B1, "i": 0x3B9, "k": 0x3BA, "v": 0x3BD, "t": 0x3C4, "p": 0x3C1, "u": 0x3C5,
          "A": 0x391, "B": 0x392, "E": 0x395, "Z": 0x396, "H": 0x397, "I": 0x399, "K": 0x39A, "M": 0x39C,
          "N": 0x39D, "O": 0x39F, "P": 0x3A1, "T": 0x3A4, "X": 0x3A7}
_ARMENIAN = {"o": 0x585, "n": 0x578, "u": 0x57D, "h": 0x570, "g": 0x581, "q": 0x566, "w": 0x561, "S": 0x54F,
             "U": 0x54D, "O": 0x555}
_LISU = {"A": 0xA4EE, "B": 0xA4D0, "C": 0xA4DA, "D": 0xA4D3, "E": 0xA4F0, "F": 0xA4DD, "G": 0xA4D6,
         "H": 0xA4E7, "I": 0xA4F2, "J": 0xA4D9, "K": 0xA4D7, "L": 0xA4E1, "M": 0xA4DF, "N": 0xA4E0,
         "O": 0xA4F3, "P": 0xA4D1, "R": 0xA4E3, "S": 0xA4E2, "T": 0xA4D4, "U": 0xA4F4, "V": 0xA4E6,
         "W": 0xA4EA, "X": 0xA4EB, "Y": 0xA4EC, "Z": 0xA4DC}
_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "g": "9",
                       "A": "4", "E": "3", "I": "1", "O": "0", "S": "5", "T": "7", "G": "9"})


def _letters(text: str, between: str) -> str:
    """`between` inserted between every two letters of a word."""
    out = []
    for i, ch in enumerate(text):
        out.append(ch)
        if ch.isalpha() and i + 1 < len(text) and text[i + 1].isalpha():
            out.append(between)
    return "".join(out)


def _swap(table: dict[str, int]) -> Callable[[str], str]:
    return lambda text: "".join(chr(table[c]) if c in table else c for c in text)


def _enclosed(base: int, *, upper: bool) -> Callable[[str], str]:
    def run(text: str) -> str:
        out = []
        for ch in text:
            ascii_letter = ch.isascii() and ch.isalpha()
            out.append(chr(base + ord(ch.upper() if upper else ch.lower()) - (65 if upper else 97))
                       if ascii_letter else ch)
        return "".join(out)
    return run


def _entities(text: str) -> str:
    return "".join(f"&#{ord(c)};" if c.isalpha() and i % 2 == 0 else c for i, c in enumerate(text))


def _spaced(text: str, gap: str = " ", word_gap: str = "   ") -> str:
    """Letters spaced out, a wider gap between words; punctuation stays on its letter."""
    def word(w: str) -> str:
        core = w.rstrip(".,;:!?")
        return gap.join(core) + w[len(core):]
    return word_gap.join(word(w) for w in text.split())


def _split_words(text: str, joiner: str) -> str:
    """Long words cut in the middle: "genocide" -> "geno-cide"."""
    out = []
    for word in text.split(" "):
        core = word.strip(".,;:!?'\"")
        if len(core) >= 5 and core.isalpha():
            half = len(core) // 2
            word = word.replace(core, core[:half] + joiner + core[half:], 1)
        out.append(word)
    return " ".join(out)


def _leet(text: str) -> str:
    """Heavy leetspeak; a word that would become all digits keeps its first letter ("S139"),
    since the normaliser reads a digits-only token as a number (1488, 2024), never as a word."""
    out = []
    for word in text.split(" "):
        leet = word.translate(_LEET)
        if leet.isdigit() and not word.isdigit():
            leet = word[0] + leet[1:]
        out.append(leet)
    return " ".join(out)


TAGS_GREETING = "Hello! "


def _tags(text: str) -> str:
    """The whole sentence as invisible tag characters (U+E0020-E007E) after a benign greeting."""
    return TAGS_GREETING + "".join(chr(0xE0000 + ord(c)) if 0x20 <= ord(c) <= 0x7E else c for c in text)


def _ascii_only(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


FAMILIES: dict[str, Callable[[str], str]] = {
    "zero_width": lambda t: _letters(t, "\u200b"),
    "soft_hyphen": lambda t: _letters(t, "\u00ad"),
    "tags": _tags,
    "bidi": lambda t: _letters(t, "\u200f"),
    "bidi_isolates": lambda t: " ".join(f"\u2066{w}\u2069" for w in t.split()),
    "combining": lambda t: "".join(c + "\u0336" if c.isalpha() else c for c in t),
    "cyrillic": _swap(_CYRILLIC),
    "greek": _swap(_GREEK),
    "armenian": _swap(_ARMENIAN),
    "lisu": lambda t: _swap(_LISU)(_ascii_only(t).upper()),
    "html_entities": _entities,
    "negative_circled": lambda t: _enclosed(0x1F150, upper=True)(_ascii_only(t)),
    "negative_squared": lambda t: _enclosed(0x1F170, upper=True)(_ascii_only(t)),
    "parenthesized": lambda t: _enclosed(0x249C, upper=False)(_ascii_only(t)),
    "nul_between": lambda t: _letters(t, "\x00"),
    "emoji_between": lambda t: _letters(t, "\U0001F525"),
    "spaced_letters": _spaced,
    "newline_letters": lambda t: _spaced(t, "\n", "\n\n"),
    "hyphen_split": lambda t: _split_words(t, "-"),
    "dot_split": lambda t: _split_words(t, "."),
    "underscore_split": lambda t: _split_words(t, "_"),
    "leetspeak": _leet,
}


# families that can only spell unaccented Latin letters, and caseless ones (read lowercase)
_ASCII_FAMILIES = {"lisu", "negative_circled", "negative_squared", "parenthesized"}


def obfuscate(text: str, family: str) -> str:
    return FAMILIES[family](text)


def plain(text: str, family: str) -> str:
    """What a reader of the obfuscated text reads: the clean text, unaccented and lowercase for
    the families that cannot spell accents or case, and the greeting the tags family shows."""
    if family == "tags":
        return TAGS_GREETING + text
    return _ascii_only(text).lower() if family in _ASCII_FAMILIES else text
