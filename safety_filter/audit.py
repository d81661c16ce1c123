"""The audit trail: one JSON line per blocked or annotated text, to a configurable sink.

A line holds: ``time`` (ISO-8601 UTC), ``request_id``, ``route``, ``role``, ``action``,
``categories`` (score, severity, filtered), ``findings`` (category, score, source, rule id and
span in the inspected text), ``policy_version``, ``detector_versions`` and, when the verdict
carries one, ``error``. Raw text is never logged by default: findings lose their ``evidence``.
With ``include_excerpts=True`` the texts (truncated) and the evidence are logged, after personal
data (names, emails, phone numbers, IPs, cards, IBANs, URLs) is replaced by ``<PERSON>``-style
tags with `safety_filter.pii.redact`, unless ``redact=False`` is given explicitly. If redaction
is on but unavailable (presidio is the `pii` extra), the excerpt is replaced by a placeholder,
never logged raw; a middleware whose policy asks for redacted excerpts fails its start-up then.

`record()` is thread-safe and never raises into the request path: a failure is reported to the
`logging` module and the line is dropped.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from safety_filter.findings import Action, Verdict

__all__ = ["REDACTION_UNAVAILABLE", "AuditLog"]

log = logging.getLogger(__name__)

REDACTION_UNAVAILABLE = "<excerpt withheld: redaction unavailable>"


class AuditLog:
    """Writes audit lines to `sink`: a file path (appended), ``"-"`` for stderr, None to disable."""

    def __init__(
        self,
        sink: str | Path | None,
        *,
        include_excerpts: bool = False,
        redact: bool = True,
        max_excerpt_chars: int = 1000,
        include_allowed: bool = False,
        detector_versions: Mapping[str, str] | None = None,
    ) -> None:
        self.sink = sink
        self.include_excerpts = include_excerpts
        self.redact = redact
        self.max_excerpt_chars = max_excerpt_chars
        self.include_allowed = include_allowed
        self.detector_versions: dict[str, str] = dict(detector_versions or {})
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self.sink is not None and not self._closed

    def configure(self, sink: str | Path | None, *, include_excerpts: bool, redact: bool) -> None:
        """Switch to new settings (a reloaded policy's): lines after this use them; a new sink
        is opened on the next line, the old file closed."""
        with self._lock:
            if sink != self.sink and self._file is not None:
                try:
                    self._file.close()
                except OSError:
                    log.exception("audit: error closing %s", self.sink)
                self._file = None
            self.sink = sink
            self.include_excerpts = include_excerpts
            self.redact = redact

    def set_detector_versions(self, versions: Mapping[str, str]) -> None:
        """Versions (e.g. a rule-list content hash, a model digest) written on every line."""
        self.detector_versions = dict(versions)

    # -- building a line -------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        text = text[: self.max_excerpt_chars] + ("…" if len(text) > self.max_excerpt_chars else "")
        if not self.redact:
            return text
        try:
            from safety_filter import pii

            return pii.redact(text)
        except Exception as exc:
            log.warning("audit: PII redaction unavailable, excerpt withheld: %s", exc)
            return REDACTION_UNAVAILABLE

    def build_line(
        self,
        *,
        request_id: str | None,
        route: str | None,
        role: str | None,
        verdict: Verdict,
        policy_version: str | None,
        texts: Sequence[str] | str | None = None,
        detector_versions: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The JSON object `record` writes (exposed for tests and for other sinks)."""
        summary = verdict.to_dict()
        findings = []
        for f in verdict.findings:
            item: dict[str, Any] = {"category": f.category, "score": round(f.score, 4), "source": f.source}
            if f.rule_id is not None:
                item["rule_id"] = f.rule_id
            if f.span is not None:
                item["span"] = list(f.span)
            if self.include_excerpts and f.evidence:
                item["evidence"] = self._redact(f.evidence)
            findings.append(item)
        line: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request_id": request_id,
            "route": route,
            "role": role,
            "action": summary["action"],
            "categories": summary["categories"],
            "findings": findings,
            "policy_version": policy_version or verdict.policy_version or None,
            "detector_versions": dict(detector_versions if detector_versions is not None else self.detector_versions),
        }
        if verdict.error is not None:
            line["error"] = verdict.error
        if self.include_excerpts and texts:
            items = [texts] if isinstance(texts, str) else list(texts)
            line["excerpts"] = [self._redact(t) for t in items if isinstance(t, str)]
            line["excerpts_redacted"] = self.redact
        return line

    # -- writing ---------------------------------------------------------------------------

    def _write(self, data: str) -> None:
        sink = self.sink
        if sink is None:
            return
        if str(sink) == "-":
            sys.stderr.write(data)
            sys.stderr.flush()
            return
        if self._file is None:
            path = Path(sink)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
        self._file.write(data)
        self._file.flush()

    def record(
        self,
        *,
        request_id: str | None,
        route: str | None,
        role: str | None,
        verdict: Verdict,
        policy_version: str | None,
        texts: Sequence[str] | str | None = None,
        detector_versions: Mapping[str, str] | None = None,
    ) -> None:
        """Write one line for a block or annotation (allowed verdicts only with an error)."""
        if not self.enabled:
            return
        try:
            if verdict.action is Action.ALLOW and verdict.error is None and not self.include_allowed:
                return
            line = self.build_line(request_id=request_id, route=route, role=role, verdict=verdict,
                                   policy_version=policy_version, texts=texts, detector_versions=detector_versions)
            data = json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"
            with self._lock:
                if self._closed:
                    return
                self._write(data)
        except Exception:
            log.exception("audit: could not write a line for request %s", request_id)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                try:
                    self._file.close()
                except OSError:
                    log.exception("audit: error closing %s", self.sink)
                self._file = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
