"""Which of many regular expressions can match a text, in one pass (Hyperscan prefilter mode).

Pattern lists run as one Python `re` scan per pattern: 62 NCII patterns cost about 14 ms over
2 KB of text, most of it on texts none of them matches. Hyperscan compiles them all into one
automaton; in prefilter mode it accepts constructs it cannot run exactly (lookbehinds) by
matching a superset, so it never misses a text the pattern matches. Only the patterns it
reports are then run with `re`, so results are exactly the `re` results.

A pattern Hyperscan cannot compile even as a prefilter is always run. Without the `hyperscan`
package (it ships x86-64 wheels only) every pattern is always run: slower, same results.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

log = logging.getLogger("safety_filter.prefilter")


class PatternSet:
    """`candidates(text)`: indices of the patterns that may match `text`, in order."""

    def __init__(self, patterns: Sequence[re.Pattern[str]]) -> None:
        self.patterns = list(patterns)
        self._always: list[int] = list(range(len(self.patterns)))
        self._db = None
        try:
            import hyperscan
        except ImportError:
            log.info("hyperscan is not installed: %d patterns run one by one", len(self.patterns))
            return
        flags = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_UCP
        compiled, always = [], []
        for index, pattern in enumerate(self.patterns):
            if pattern.flags & re.IGNORECASE:
                always.append(index)
                continue
            try:
                db = hyperscan.Database()
                db.compile(expressions=[pattern.pattern.encode()], ids=[index], flags=[flags])
            except Exception:  # a construct Hyperscan refuses even as a prefilter
                always.append(index)
                continue
            compiled.append(index)
        if compiled:
            self._db = hyperscan.Database()
            self._db.compile(expressions=[self.patterns[i].pattern.encode() for i in compiled], ids=compiled,
                             flags=[flags] * len(compiled))
        self._always = always

    def candidates(self, text: str) -> list[int]:
        if self._db is None:
            return list(self._always)
        found = set(self._always)

        def on_match(pattern_id: int, start: int, end: int, flags: int, context: object) -> None:
            found.add(pattern_id)

        self._db.scan(text.encode("utf-8", "surrogatepass"), match_event_handler=on_match)
        return sorted(found)
