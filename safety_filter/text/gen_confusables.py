# ruff: noqa: RUF002, RUF003  (look-alike characters are the point here)
"""Generate `confusables_latin.json`: characters that look like a Latin letter or digit -> it.

Run `python -m safety_filter.text.gen_confusables` (needs `pip install confusable-homoglyphs`,
the `textdata` extra) after upgrading that package. Sources, both maintained by Unicode:

* TR39 confusables (`confusable_homoglyphs/confusables.json`): for every ASCII letter or digit,
  the characters visually confusable with it (Cyrillic, Greek, Armenian, Lisu, Cherokee...).
  A character listed under several keys takes the key of its own case (``Ι`` -> ``I``).
* enclosed letters NFKC leaves alone, by their Unicode names: negative circled, negative
  squared and parenthesized Latin letters (``🅐``, ``🅰``, ``⒜``), regional indicators
  (``🇦``) and small capitals (``ᴀ``).

Only characters confusable with ASCII letters/digits are kept; ASCII itself and Latin letters
with accents (handled by NFKD in the normaliser, which keeps French readable) are left out.
"""

from __future__ import annotations

import json
import re
import string
import sys
import unicodedata
from pathlib import Path

OUT = Path(__file__).with_name("confusables_latin.json")
_ENCLOSED = re.compile(r"^(?:NEGATIVE CIRCLED|NEGATIVE SQUARED|PARENTHESIZED|SQUARED|CIRCLED|REGIONAL INDICATOR|LATIN) "
                       r"(?:LATIN )?(?:CAPITAL |SMALL )?(?:SYMBOL )?LETTER (?:SMALL CAPITAL )?([A-Z])$")


def _keep(ch: str) -> bool:
    if len(ch) != 1 or ch.isascii():
        return False
    if unicodedata.category(ch).startswith(("Z", "C", "M")):
        return False
    base = unicodedata.normalize("NFKD", ch)
    return not (base[:1].isascii() and base[:1].isalnum())  # é, ｅ: NFKC/NFKD already fold them


def build() -> dict[str, str]:
    from confusable_homoglyphs.utils import load

    data = load("confusables.json")
    table: dict[str, str] = {}
    keys = [*string.ascii_lowercase, *string.ascii_uppercase, *string.digits]
    for key in keys:
        for item in data.get(key, ()):
            ch = item["c"].strip("\u200e\u200f")
            if not _keep(ch):
                continue
            previous = table.get(ch)
            same_case = key.isupper() == ch.isupper() if key.isalpha() else False
            if previous is None or (same_case and previous.isupper() != key.isupper()):
                # TR39's prototype for I, l, 1 and | is "l"; a capital or caseless look-alike reads "I"
                table[ch] = "I" if key == "l" and not ch.islower() else key
    for ch, key in list(table.items()):  # lowercase forms of listed capitals: Cyrillic н, к, т
        low = ch.lower()
        if key.isalpha() and len(low) == 1 and low != ch and low not in table and _keep(low):
            table[low] = key.lower()
    for cp in range(0x0180, 0x1F200):
        name = unicodedata.name(chr(cp), "")
        m = _ENCLOSED.match(name)
        if m and name.startswith("LATIN") and "SMALL CAPITAL" not in name:
            continue
        if m and (chr(cp) not in table) and (unicodedata.normalize("NFKC", chr(cp)) == chr(cp)
                                             or "PARENTHESIZED" in name):  # NFKC gives "(a)"
            table[chr(cp)] = m.group(1).lower() if "SMALL" in name else m.group(1)
    return dict(sorted(table.items()))


def main() -> int:
    table = build()
    OUT.write_text(json.dumps(table, ensure_ascii=False, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(table)} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
