"""The one interface every detector implements, and a base class with its optional members.

A detector looks at a batch of texts and returns, for each text, the findings it has. It knows
nothing about HTTP, roles or policy: turning findings into a decision is `policy.decide`'s job.

`Detector` is the interface (what the engine needs); `BaseDetector` adds the optional members
with do-nothing defaults, so the engine calls them plainly. A detector written to the bare
interface (a plugin, a test fake) still works: `warm_up`, `watched_paths` and `version` below
give it the defaults, or use its own members of those names when it has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from safety_filter.findings import Finding


@runtime_checkable
class Detector(Protocol):
    """Batched detection: `detect(texts)[i]` holds the findings for `texts[i]`.

    `name` appears in findings (`Finding.source`) and in the audit trail. `load()` does the
    expensive part (models, compiled lists) once; the engine calls it at start-up, never per
    request. `detect` may be called from a worker thread, never concurrently with itself.
    """

    name: str

    def load(self) -> None: ...

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]: ...


class BaseDetector:
    """A detector with every optional member the engine uses, defaulting to nothing.

    Subclasses set `name`, implement `detect`, and override what they need:
    - `load()`: the expensive part, once (models, compiled lists);
    - `warm_up()`: slow start-up work a server wants done before its first request;
    - `watched_paths()`: files (and folders) whose change triggers a hot reload;
    - `version`: what is loaded (list content hash, model digest), for the audit trail;
    - `detect_after(texts, earlier)`: `detect` given what the detectors before it found (the
      classifier's cascade reads every text a rule list hit, so the list's second witness is
      always a real reading).
    """

    name: str = ""
    version: str = ""

    def load(self) -> None:
        """Nothing to load by default."""

    def warm_up(self) -> None:
        """Nothing to warm up by default."""

    def watched_paths(self) -> list[Path]:
        return []

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]:
        raise NotImplementedError

    def detect_after(self, texts: Sequence[str], earlier: Sequence[Sequence[Finding]]) -> list[list[Finding]]:
        """`detect`, by default blind to the earlier detectors' findings."""
        return self.detect(texts)


# The engine's view of any detector, `BaseDetector` or bare `Detector`. The getattr fallbacks
# serve detectors written to the bare interface only; a BaseDetector answers directly.


def warm_up(detector: Detector) -> None:
    if isinstance(detector, BaseDetector):
        detector.warm_up()
    elif callable(method := getattr(detector, "warm_up", None)):
        method()


def watched_paths(detector: Detector) -> list[Path]:
    if isinstance(detector, BaseDetector):
        return list(detector.watched_paths())
    method = getattr(detector, "watched_paths", None)
    return list(method()) if callable(method) else []


def detect_after(detector: Detector, texts: Sequence[str], earlier: Sequence[Sequence[Finding]]) -> list[list[Finding]]:
    if isinstance(detector, BaseDetector):
        return detector.detect_after(texts, earlier)
    return detector.detect(texts)


def version(detector: Detector) -> str:
    found = detector.version if isinstance(detector, BaseDetector) else getattr(detector, "version", "")
    return str(found or "")
