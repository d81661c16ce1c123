"""The one interface every detector implements.

A detector looks at a batch of texts and returns, for each text, the findings it has. It knows
nothing about HTTP, roles or policy: turning findings into a decision is `policy.decide`'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from safety_filter.findings import Finding


@runtime_checkable
class Detector(Protocol):
    """Batched detection: `detect(texts)[i]` holds the findings for `texts[i]`.

    `name` appears in findings (`Finding.source`) and in the audit trail. `load()` does the
    expensive part (models, compiled lists) once; the engine calls it at start-up, never per
    request. `detect` may be called from a worker thread, never concurrently with itself.

    Optional members the engine uses when present: `warm_up()` (slow start-up work a server
    wants done before its first request), `watched_paths()` (files whose change triggers a hot
    reload) and `version` (written to the audit trail).
    """

    name: str

    def load(self) -> None: ...

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]: ...
