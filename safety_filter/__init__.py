"""safety-filter: content-safety middleware for LLM services.

Mount `SafetyFilterMiddleware` in front of an OpenAI-compatible ASGI app, or run
`safety-filter serve` as a reverse proxy. Importing this package loads no model: detectors load
when the server starts (or on first use).
"""

from safety_filter.asgi.middleware import SafetyFilterMiddleware
from safety_filter.detectors.base import BaseDetector, Detector
from safety_filter.engine import Engine
from safety_filter.findings import Action, Category, CategoryResult, Finding, Severity, Verdict, Witness
from safety_filter.policy import Policy, PolicyError, decide, load_policy

__all__ = [
    "Action",
    "BaseDetector",
    "Category",
    "CategoryResult",
    "Detector",
    "Engine",
    "Finding",
    "Policy",
    "PolicyError",
    "SafetyFilterMiddleware",
    "Severity",
    "Verdict",
    "Witness",
    "decide",
    "load_policy",
]
__version__ = "0.1.0"
