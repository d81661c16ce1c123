"""Rule lists kept by security teams: loading, validation, one automaton, and the detector.

Every literal entry of every loaded list is normalised with `safety_filter.text.normalize` and
compiled into ONE Aho-Corasick automaton (`ahocorasick_rs`), whose matching cost does not depend
on the number of terms. Regex entries run with the `regex` package's timeout, after a load-time
check that refuses nested quantifiers and patterns that blow up on adversarial probes. A list's
`action` override is carried in `Finding.action`.

- `schema.py`: finding list files, their two formats (YAML, .txt) and their pydantic schema;
- `regexes.py`: regex entries (normalising their letters, prefilter literals, backtracking check);
- `compiler.py`: `CompiledRules`, the automaton and the matcher;
- `detector.py`: `RulesDetector` and its `explain`;
- `model.py`: the data (`Entry`, `RuleList`, `RuleMatch`) and `BlocklistError`.
"""

from safety_filter.detectors.rules.compiler import DFA_MAX_PATTERNS, CompiledRules, boundary_ok, compile_lists
from safety_filter.detectors.rules.detector import NORMALIZER_VERSION, RulesDetector
from safety_filter.detectors.rules.model import (
    DEFAULT_REGEX_TIMEOUT,
    LINT_CHECKS,
    MATCH_MODES,
    BlocklistError,
    Entry,
    RuleList,
    RuleMatch,
)
from safety_filter.detectors.rules.regexes import check_regex, normalize_regex_source, regex_triggers
from safety_filter.detectors.rules.schema import list_files, load_list, resolve_lists

__all__ = [
    "DEFAULT_REGEX_TIMEOUT",
    "DFA_MAX_PATTERNS",
    "LINT_CHECKS",
    "MATCH_MODES",
    "NORMALIZER_VERSION",
    "BlocklistError",
    "CompiledRules",
    "Entry",
    "RuleList",
    "RuleMatch",
    "RulesDetector",
    "boundary_ok",
    "check_regex",
    "compile_lists",
    "list_files",
    "load_list",
    "normalize_regex_source",
    "regex_triggers",
    "resolve_lists",
]
