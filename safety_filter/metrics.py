"""Prometheus metrics: counts and timings only, never text (nothing personal can leak here).

`safety-filter serve` exposes them at `/safety-filter/metrics`; an app that mounts the middleware
can expose `prometheus_client`'s default registry however it likes.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from safety_filter.findings import Verdict

VERDICTS = Counter("safety_filter_verdicts", "Verdicts by role and action", ["role", "action"])
FILTERED = Counter("safety_filter_filtered", "Filtered categories by role", ["role", "category"])
UNINSPECTABLE = Counter("safety_filter_uninspectable", "Texts that could not be inspected (fail mode applied)", ["role"])
DETECTOR_ERRORS = Counter("safety_filter_detector_errors", "Detector parts that failed (the fail mode applied)",
                          ["detector", "part"])
DETECTION_SECONDS = Histogram(
    "safety_filter_detection_seconds",
    "Time to run all detectors over one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_TEXTS = Histogram("safety_filter_batch_texts", "Texts per detection batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))


def record(role: str, verdict: Verdict) -> None:
    VERDICTS.labels(role, verdict.action.value).inc()
    if verdict.error is not None:
        UNINSPECTABLE.labels(role).inc()
    for category in verdict.filtered_categories():
        FILTERED.labels(role, category).inc()
