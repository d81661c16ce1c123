r"""Which of the NCII detector's regexes can match a text, in one Hyperscan pass.

The detector runs some sixty Python regexes over every text; each costs a full scan (about
0.07 ms per 3 KB here, 4 ms per text in all), though on most texts only a handful can match.
Hyperscan scans for all of them at once, in prefilter mode: it may report a pattern that does
not match (lookbehinds and other constructs it lacks are approximated by a looser pattern),
never miss one that does. Python's `re` then runs only the reported patterns, so the signals
are exactly those of the full scan. Hyperscan reads `\w` and `\b` as ASCII (its Unicode mode
took minutes to compile these patterns), which agrees with Python's Unicode reading on ASCII
text only: any other text, a text it cannot read, or a pattern it cannot compile even loosely
falls back to Python's scan. Compiling takes a second or two, so a pattern set is compiled once
per process (`prefilter_for`).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence

log = logging.getLogger("safety_filter.ncii")


class Prefilter:
    """`candidates(text)`: the indexes of the patterns that may match `text`, or None for all."""

    def __init__(self, patterns: Sequence[str]) -> None:
        import hyperscan

        flags = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY

        def database(indexes: Sequence[int]) -> hyperscan.Database:
            db = hyperscan.Database()
            db.compile(expressions=[patterns[i].encode() for i in indexes], ids=list(indexes),
                       elements=len(indexes), flags=[flags] * len(indexes))
            return db

        self.always: set[int] = set()
        self._db = None
        try:
            self._db = database(range(len(patterns))) if patterns else None
        except hyperscan.error:  # find the patterns it cannot take; they run on every text
            for index in range(len(patterns)):
                try:
                    database([index])
                except hyperscan.error as exc:
                    log.info("ncii: pattern %d runs on every text (hyperscan: %s)", index, exc)
                    self.always.add(index)
            compiled = [i for i in range(len(patterns)) if i not in self.always]
            self._db = database(compiled) if compiled else None
        self._lock = threading.Lock()

    def candidates(self, text: str) -> set[int] | None:
        if self._db is None or not text.isascii():
            return None
        data = text.encode("ascii")
        found = set(self.always)

        def on_match(index: int, start: int, end: int, flags: int, context: object) -> None:
            found.add(index)

        with self._lock:
            self._db.scan(data, match_event_handler=on_match)
        return found


@functools.lru_cache(maxsize=8)
def prefilter_for(patterns: tuple[str, ...]) -> Prefilter:
    """One compiled prefilter per pattern set (detectors reloaded with the same files share it)."""
    return Prefilter(patterns)
