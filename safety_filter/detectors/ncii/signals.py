"""The NCII detector's signal files (``blocklists/_ncii/``): their schema, and what they load into.

Each file is validated by a pydantic model; a problem raises `SignalFileError` naming the file,
the key and the problem (`intent.yaml: groups.alter.3.re: ...`), never a bare `KeyError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from safety_filter.detectors.ncii.prefilter import Prefilter, prefilter_for
from safety_filter.errors import ConfigurationError
from safety_filter.text.view import lower_fold, model_view

STRONG, WEAK = "strong", "weak"
SIGNAL_FILES = ("public_figures.yaml", "relations.yaml", "intent.yaml", "exclusions.yaml")
TOKEN = re.compile(r"\w+")


class SignalFileError(ConfigurationError):
    """An NCII signal file that cannot be used; the message names the file, the key and the problem."""


@dataclass(frozen=True, slots=True)
class Signal:
    kind: str  # "person" | "intent" | "framing"
    group: str  # person: figure/relation/ner/image_ref/pronoun; intent: alter/nudity/...
    pattern: str
    start: int
    end: int
    strength: str = STRONG
    evidence: str = ""


@dataclass(frozen=True, slots=True)
class Framing:
    """One framing pattern of `exclusions.yaml`: a match scales a score by `factor`."""

    group: str
    factor: float
    fiction_only: bool  # `applies_to` is set: only for scores that rest on sexual/nudity words
    pattern_id: str
    regex: re.Pattern[str]


# --- the schema -------------------------------------------------------------------------------


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int | str = 1


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Figure(_Item):
    name: str
    kind: str = ""
    aliases: tuple[str, ...] = ()
    ambiguous: bool = False
    gender: str = "f"  # only used by the data generator


class FiguresFile(_File):
    figures: tuple[_Figure, ...]


class _Relations(_Item):
    possessives: tuple[str, ...]
    nouns: tuple[str, ...]
    phrases: tuple[str, ...] = ()


class RelationsFile(_File):
    en: _Relations
    fr: _Relations


class _Pattern(_Item):
    id: str
    re: str
    needs_person: bool = False  # an intent that never counts without a person next to it
    names_the_harm: bool = False  # a word naming the harm ("sextortion"), not a phrasing that commits it

    @field_validator("re")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from None
        return value


class IntentFile(_File):
    groups: dict[str, tuple[_Pattern, ...]]


class _FramingGroup(_Item):
    factor: float = Field(ge=0.0, le=1.0)
    applies_to: tuple[str, ...] | None = None
    patterns: tuple[_Pattern, ...]


class ExclusionsFile(_File):
    groups: dict[str, _FramingGroup]


_M = TypeVar("_M", bound=BaseModel)


def _read(path: Path, model: type[_M]) -> _M:
    try:
        with path.open(encoding="utf-8") as fh:
            data: Any = yaml.safe_load(fh)
    except OSError as exc:
        raise SignalFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise SignalFileError(f"{path}: invalid YAML: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a misspelt key first
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = "unknown key (check its spelling)" if first["type"] == "extra_forbidden" else first["msg"]
        raise SignalFileError(f"{path}: {key}: {str(message).removeprefix('Value error, ')}") from None


# --- what the files load into -------------------------------------------------------------------


def _phrase_key(phrase: str) -> str:
    """A list phrase as its normalised word tokens joined by one space."""
    return " ".join(TOKEN.findall(lower_fold(model_view(phrase.strip()).text)))


class PhraseIndex:
    """Longest-match lookup of multi-word phrases over a text's word tokens.

    Phrases are kept as token tuples, with every proper prefix of one: a match grows token by
    token while what it has read is still the start of some phrase, so a common first word ("my"
    of "my ex") costs one probe, not one per phrase length. Spaces, hyphens and apostrophes
    between words all match each other ("ex-girlfriend", "ex girlfriend"; "Charli D'Amelio",
    "Charli DAmelio" is a separate alias).
    """

    def __init__(self) -> None:
        self._index: dict[tuple[str, ...], tuple[str, str]] = {}
        self._prefixes: set[tuple[str, ...]] = set()

    def add(self, phrase: str, label: str, strength: str) -> None:
        key = tuple(_phrase_key(phrase).split())
        if key and key not in self._index:
            self._index[key] = (label, strength)
            self._prefixes.update(key[:n] for n in range(1, len(key)))

    def find(self, tokens: list[tuple[int, int, str]]) -> list[tuple[int, int, str, str]]:
        out = []
        i, n_tok = 0, len(tokens)
        while i < n_tok:
            longest, hit = 0, None
            words: tuple[str, ...] = ()
            for j in range(i, n_tok):
                words = (*words, tokens[j][2])
                found = self._index.get(words)
                if found is not None:
                    longest, hit = j - i + 1, found
                if words not in self._prefixes:
                    break
            if hit is None:
                i += 1
                continue
            out.append((tokens[i][0], tokens[i + longest - 1][1], hit[0], hit[1]))
            i += longest
        return out


@dataclass(frozen=True, slots=True)
class SignalData:
    """Everything the signal files say, ready to match."""

    figures: PhraseIndex
    relations: PhraseIndex
    intents: tuple[tuple[str, str, re.Pattern[str]], ...]  # (group, pattern id, regex)
    needs_person: frozenset[tuple[str, str]]  # (group, pattern id) of intents that need a person
    framings: tuple[Framing, ...]
    prefilter: Prefilter  # over the intents' regexes, then the framings'
    naming: frozenset[tuple[str, str]] = frozenset()  # (group, pattern id) of intents that name the harm


def load_signal_data(folder: Path) -> SignalData:
    """Read and validate the four signal files in `folder`; raises `SignalFileError`."""
    figures = PhraseIndex()
    for fig in _read(folder / "public_figures.yaml", FiguresFile).figures:
        for name in (fig.name, *fig.aliases):
            figures.add(name, fig.name, WEAK if fig.ambiguous else STRONG)
    relations = PhraseIndex()
    spec = _read(folder / "relations.yaml", RelationsFile)
    for lang in (spec.en, spec.fr):
        for possessive in lang.possessives:
            for noun in lang.nouns:
                relations.add(f"{possessive} {noun}", "relation", STRONG)
        for phrase in lang.phrases:
            relations.add(phrase, "relation", STRONG)
    groups = _read(folder / "intent.yaml", IntentFile).groups
    intents = tuple((group, p.id, re.compile(p.re)) for group, patterns in groups.items() for p in patterns)
    needs_person = frozenset((group, p.id) for group, patterns in groups.items() for p in patterns if p.needs_person)
    naming = frozenset((group, p.id) for group, patterns in groups.items() for p in patterns if p.names_the_harm)
    framings = tuple(
        Framing(group, spec.factor, bool(spec.applies_to), p.id, re.compile(p.re))
        for group, spec in _read(folder / "exclusions.yaml", ExclusionsFile).groups.items()
        for p in spec.patterns
    )
    prefilter = prefilter_for((*(rx.pattern for _, _, rx in intents), *(f.regex.pattern for f in framings)))
    return SignalData(figures, relations, intents, needs_person, framings, prefilter, naming)
