"""Prometheus metrics: counts and timings only, never text (nothing personal can leak here).

Nothing is registered at import. The collectors are created on first use in the registry chosen
with `use(registry)`, or else in `prometheus_client`'s default registry (so an app that already
exposes that one sees them). `safety-filter serve` exposes the chosen registry at
`/safety-filter/metrics`.
"""

from __future__ import annotations

import threading

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from safety_filter.findings import Verdict

__all__ = ["Metrics", "current", "record", "use"]


class Metrics:
    """safety-filter's collectors, registered in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self.verdicts = Counter("safety_filter_verdicts", "Verdicts by role and action", ["role", "action"], registry=r)
        self.filtered = Counter("safety_filter_filtered", "Filtered categories", ["role", "category"], registry=r)
        self.uninspectable = Counter(
            "safety_filter_uninspectable", "Texts that could not be inspected (fail mode applied)", ["role"], registry=r
        )
        self.detection_seconds = Histogram(
            "safety_filter_detection_seconds",
            "Time to run all detectors over one batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        sizes = (1, 2, 4, 8, 16, 32, 64, 128, 256)
        self.batch_texts = Histogram("safety_filter_batch_texts", "Texts per batch", buckets=sizes, registry=r)
        self.reloads = Counter("safety_filter_reloads", "Policy and list reloads by outcome", ["outcome"], registry=r)
        self.detector_errors = Counter("safety_filter_detector_errors", "Detector parts that failed (fail mode)",
                                       ["detector", "part"], registry=r)

    def record(self, role: str, verdict: Verdict) -> None:
        self.verdicts.labels(role, verdict.action.value).inc()
        if verdict.error is not None:
            self.uninspectable.labels(role).inc()
        for category in verdict.filtered_categories():
            self.filtered.labels(role, category).inc()


_current: Metrics | None = None
_by_registry: dict[int, Metrics] = {}  # a registry takes each collector once
_lock = threading.Lock()


def use(registry: CollectorRegistry) -> Metrics:
    """Count in `registry` from now on (call before serving); its collectors are made once."""
    global _current
    with _lock:
        if id(registry) not in _by_registry:
            _by_registry[id(registry)] = Metrics(registry)
        _current = _by_registry[id(registry)]
        return _current


def current() -> Metrics:
    """The collectors in use; created in the default registry if `use` was never called."""
    return _current if _current is not None else use(REGISTRY)


def record(role: str, verdict: Verdict) -> None:
    current().record(role, verdict)
