"""Reading rule list files: where they are, their two formats, and their schema.

A list is a YAML file (name, category, action, entries, allow exceptions...) or a plain `.txt`
file with one term per line; `blocklists/README.md` documents both formats. Both are validated by
the pydantic models below; a problem raises `BlocklistError` naming the file, the key or entry,
and the problem (`hate.yaml: entries[3] ('kil'): score: ...`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from safety_filter.detectors.rules.model import LINT_CHECKS, MATCH_MODES, BlocklistError, Entry, RuleList
from safety_filter.detectors.rules.regexes import check_regex, normalize_regex_source, regex_triggers
from safety_filter.findings import CATEGORIES
from safety_filter.text.normalize import normalize_term_runs

LIST_SUFFIXES = (".yaml", ".yml", ".txt")
DEFAULT_TXT_CATEGORY = "blocklist"
_CATEGORY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_TXT_DIRECTIVES = {"name", "category", "action", "score", "description", "language", "match", "scope"}

MatchMode = Literal["word", "prefix", "suffix", "substring"]
LintCheck = Literal["duplicate", "merged", "shadowed", "over-broad", "short", "regex"]
Score = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]  # a number (never a bool or a string)
assert get_args(MatchMode) == MATCH_MODES and get_args(LintCheck) == LINT_CHECKS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListFile(_Strict):
    """The top level of a list file (a .txt file's `#: key: value` directives fill the same keys)."""

    name: str
    category: str
    action: Literal["allow", "annotate", "block"] | None = None
    score: Score = 1.0
    description: str = ""
    language: Any = None
    match: MatchMode = "word"  # the default of the entries
    join: StrictBool = True  # the default of the entries
    scope: Literal["list", "global"] = "list"  # allow exceptions apply to this list, or to every list
    sources: Any = None
    reviewed: Any = None
    notes: Any = None
    entries: list[Any] | None = None
    allow: list[Any] | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        name = str(value)
        if not _NAME_RE.match(name):
            raise ValueError(f"must be letters, digits, '_', '-' or '.', got {name!r}")
        return name

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, value: Any) -> str:
        if not isinstance(value, str) or not _CATEGORY_RE.match(value):
            raise ValueError(f"must be one of {', '.join(CATEGORIES)} or a custom lowercase name "
                             f"([a-z][a-z0-9_]*), got {value!r}")
        return value

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: Any) -> str:
        return str(value or "")

    @model_validator(mode="after")
    def _has_entries(self) -> ListFile:
        if not {"entries", "allow"} & self.model_fields_set:
            raise ValueError("entries: missing (a list needs 'entries' and/or 'allow')")
        return self


def _text_field(value: Any) -> str | None:
    """A term, regex or id: a non-empty string, or a number written bare in YAML (1488)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return str(value)


class EntryFields(_Strict):
    """One entry of `entries` or `allow`: a term or a regex, and what overrides the list's defaults."""

    term: str | None = None
    regex: str | None = None
    id: str | None = None
    match: MatchMode | None = None
    score: Score | None = None
    note: Any = None
    target: Literal["normalized", "original"] | None = None  # what a regex reads
    join: StrictBool | None = None
    lint_ignore: tuple[LintCheck, ...] = ()  # lint checks reviewed and accepted for this entry

    @field_validator("term", "regex", "id", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        return _text_field(value)

    @field_validator("lint_ignore", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _term_or_regex(self) -> EntryFields:
        if (self.term is None) == (self.regex is None):
            raise ValueError("an entry needs exactly one of 'term' or 'regex'")
        if self.term is not None and self.target is not None:
            raise ValueError("'target' only applies to regex entries")
        return self


def _err(path: Path, where: str, problem: str) -> BlocklistError:
    return BlocklistError(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


def _invalid(path: Path, where: str, exc: ValidationError, known: Sequence[str], detail: str = "") -> BlocklistError:
    """One message for a ValidationError: unknown keys first (all of them), else the first problem.

    `detail` (the entry's term) is added to `where` for a problem with one of the entry's settings.
    """
    errors = exc.errors()
    unknown = [str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        return _err(path, where, f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    first = errors[0]
    if first["loc"] and first["loc"][0] not in ("term", "regex"):
        where += detail
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "missing"
    elif first["type"] != "value_error" and not isinstance(first.get("input"), dict | list):
        message = f"{message}, got {first['input']!r}"
    key = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    if key and not message.startswith(f"{key}:"):
        message = f"{key}: {message}"
    return _err(path, where, message)


def _build_entry(path: Path, rl: RuleList, defaults: ListFile, section: str, i: int, item: Any) -> Entry:
    line = None
    if isinstance(item, dict) and "_line" in item:
        item = dict(item)
        line = item.pop("_line")
    where = f"line {line}" if line else f"{section}[{i}]"
    if isinstance(item, str):
        item = {"term": item}
    if not isinstance(item, dict):
        raise _err(path, where, f"an entry must be a string or a mapping, got {type(item).__name__}")
    written = item.get("term", item.get("regex"))
    detail = f" ({str(written)!r})" if isinstance(written, str | int) and not isinstance(written, bool) else ""
    try:
        fields = EntryFields.model_validate(item)
    except ValidationError as exc:
        raise _invalid(path, where, exc, list(EntryFields.model_fields), detail) from None
    raw = fields.term if fields.term is not None else fields.regex
    assert raw is not None
    where += detail
    common: dict[str, Any] = dict(
        list_name=rl.name, category=rl.category, term=raw,
        rule_id=f"{rl.name}:{fields.id if fields.id is not None else raw}",
        match=fields.match or defaults.match, score=fields.score if fields.score is not None else defaults.score,
        allow=section == "allow", join=fields.join if fields.join is not None else defaults.join,
        source=str(path), index=i, lint_ignore=fields.lint_ignore,
    )
    if fields.term is not None:
        norm, runs = normalize_term_runs(raw)
        if not norm:
            raise _err(path, where, "term is empty after normalisation")
        return Entry(kind="term", norm=norm, runs=runs, **common)
    on = fields.target or "normalized"
    source = normalize_regex_source(raw) if on == "normalized" else raw
    try:
        pattern = check_regex(source)
    except ValueError as exc:
        raise _err(path, where, f"bad regex: {exc}") from None
    triggers = regex_triggers(source) if on == "normalized" else None
    return Entry(kind="regex", on=on, pattern=pattern, triggers=triggers, **common)


def _parse_txt_term(line: str) -> tuple[dict[str, Any], bool]:
    """A .txt line -> (entry fields, is_allow): `allow:` and `re:` prefixes, `*` for the match mode."""
    allow = False
    if line.startswith("allow:"):
        allow = True
        line = line[len("allow:"):].strip()
    if line.startswith("re:"):
        return {"regex": line[3:].strip()}, allow
    match = None
    if line.startswith("*") and line.endswith("*") and len(line) > 2:
        match, line = "substring", line[1:-1]
    elif line.endswith("*") and len(line) > 1:
        match, line = "prefix", line[:-1]
    elif line.startswith("*") and len(line) > 1:
        match, line = "suffix", line[1:]
    fields: dict[str, Any] = {"term": line.strip()}
    if match:
        fields["match"] = match
    return fields, allow


def _read_txt(path: Path, raw: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": path.stem, "category": DEFAULT_TXT_CATEGORY, "entries": [], "allow": []}
    for lineno, line in enumerate(raw.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#:"):
            key, sep, value = stripped[2:].partition(":")
            key, value = key.strip(), value.strip()
            if not sep or key not in _TXT_DIRECTIVES:
                raise _err(path, f"line {lineno}", f"unknown directive {stripped!r} (known: "
                           f"{', '.join(sorted(_TXT_DIRECTIVES))}, written '#: key: value')")
            doc[key] = float(value) if key == "score" and value.replace(".", "", 1).isdigit() else value
            continue
        if stripped.startswith("#"):
            continue
        fields, allow = _parse_txt_term(stripped)
        fields["_line"] = lineno
        doc["allow" if allow else "entries"].append(fields)
    return doc


def _read_yaml(path: Path, raw: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise _err(path, where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(doc, dict):
        raise _err(path, "", "a YAML list file must be a mapping with at least 'name', 'category' and 'entries'")
    return doc


def load_list(path: str | Path, errors: list[BlocklistError] | None = None) -> RuleList:
    """Parse and validate one list file (YAML or .txt); raises BlocklistError.

    With `errors` (a list), a bad entry is recorded there and skipped instead of raised, so
    `blocklist lint` can report every problem at once; file-level problems still raise.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _err(path, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _err(path, "", f"not UTF-8 ({exc})") from None
    doc = _read_txt(path, raw) if path.suffix.lower() == ".txt" else _read_yaml(path, raw)
    try:
        spec = ListFile.model_validate(doc)
    except ValidationError as exc:
        raise _invalid(path, "", exc, list(ListFile.model_fields)) from None
    rl = RuleList(
        name=spec.name, category=spec.category, path=path, action=spec.action, score=spec.score,
        description=spec.description, language=spec.language, scope=spec.scope,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    for section in ("entries", "allow"):
        built = []
        for i, item in enumerate(getattr(spec, section) or [], 1):
            try:
                built.append(_build_entry(path, rl, spec, section, i, item))
            except BlocklistError as exc:
                if errors is None:
                    raise
                errors.append(exc)
        setattr(rl, section, built)
    return rl


def list_files(path: Path) -> list[Path]:
    """The list files under a folder (recursive, sorted), skipping README and `_`/`.` names."""
    if path.is_file():
        return [path]
    out = []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path)
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        if p.is_file() and p.suffix.lower() in LIST_SUFFIXES and p.stem.lower() != "readme":
            out.append(p)
    return out


def resolve_lists(lists: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """(list files, folders scanned) for a `lists` spec; "default" is the shipped blocklists."""
    from safety_filter.resources import blocklists_dir

    files: list[Path] = []
    dirs: list[Path] = []
    for item in lists:
        path = blocklists_dir() if str(item) == "default" else Path(item)
        if path.is_dir():
            dirs.extend([path, *(d for d in sorted(path.rglob("*")) if d.is_dir() and not any(
                part.startswith(("_", ".")) for part in d.relative_to(path).parts))])
            files.extend(list_files(path))
        elif path.is_file():
            files.append(path)
        else:
            raise BlocklistError(f"{path}: no such list file or folder")
    seen: set[Path] = set()
    unique = []
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(f)
    return unique, dirs
