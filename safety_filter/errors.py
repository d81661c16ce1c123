"""The exceptions safety-filter raises, as one tree (catch `SafetyFilterError` for all of them).

```
SafetyFilterError
├── ConfigurationError        a policy, list or model that cannot be used (start-up, reload)
│   ├── PolicyError           policy.py: names the file, the key and the problem
│   ├── BlocklistError        detectors/rules/: names the list, the entry and the problem
│   └── SignalFileError       detectors/ncii/: names the signal file, the key and the problem
├── InspectionError           content that could not be inspected: the fail mode decides
│   └── Overloaded            the detection queue is full: answer 503 with Retry-After now
└── ShapeError                a request or response body of a shape the adapter cannot read
```
"""

from __future__ import annotations


class SafetyFilterError(Exception):
    """Base of every error safety-filter raises on purpose."""


class ConfigurationError(SafetyFilterError, ValueError):
    """A policy, rule list or model that cannot be used; the message says where and why."""


class InspectionError(SafetyFilterError):
    """Content could not be inspected (a detector failed or timed out): the fail mode decides."""


class Overloaded(InspectionError):
    """More detection work is queued than the engine will take; retry after `retry_after` s."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShapeError(SafetyFilterError, ValueError):
    """A JSON body that is not of a shape the API adapter can inspect; the message names the path."""
