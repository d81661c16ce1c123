"""The detector registry: which detectors a policy turns on, built from their settings.

Factories import their module lazily so `import safety_filter` stays light (no onnxruntime,
no spaCy) and a disabled detector costs nothing. Third parties register more detectors through
the `safety_filter.detectors` entry-point group: each entry point names a callable taking the
policy and returning a Detector (or None). A plugin's own settings are the section under
`detectors:` named like its entry point, `policy.detectors.plugin(name)` (a `PluginSettings`:
`enabled: false` skips the plugin, other keys are its own); name the detector like its entry
point, so a reload that edits the section rebuilds it.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from safety_filter.detectors.base import Detector

if TYPE_CHECKING:
    from safety_filter.policy import Policy

__all__ = ["Detector", "build_detectors"]


def _rules(policy: Policy) -> Detector | None:
    if not policy.detectors.rules.enabled:
        return None
    from safety_filter.detectors.rules import RulesDetector

    settings = policy.detectors.rules
    return RulesDetector(settings.blocklists, mention_weight=settings.mention_weight)


def _classifier(policy: Policy) -> Detector | None:
    settings = policy.detectors.classifier
    if not settings.enabled:
        return None
    from safety_filter.detectors.classifier import ClassifierDetector

    model = None if settings.model == "default" else settings.model
    return ClassifierDetector(model_dir=model, threads=settings.threads, cascade=settings.cascade,
                              flag_floor=_lowest_threshold(policy))


def _lowest_threshold(policy: Policy) -> float:
    """The lowest score from which the policy acts on any category (the classifier's screen must
    not clear a window the encoder would score at or above it)."""
    rules = [*policy.categories.values(), policy.custom_categories]
    acting = [r.threshold for rule in rules for r in (rule.prompt, rule.completion) if r.action != "off"]
    return min(acting, default=1.0)


def _ncii(policy: Policy) -> Detector | None:
    if not policy.detectors.ncii.enabled:
        return None
    from safety_filter.detectors.ncii import NCIIDetector

    return NCIIDetector()


BUILTIN: dict[str, Callable[[Policy], Detector | None]] = {
    "rules": _rules,
    "classifier": _classifier,
    "ncii": _ncii,
}


def plugin_names() -> set[str]:
    """Names of the installed plugin detectors (entry points that do not shadow a built-in)."""
    return {entry.name for entry in entry_points(group="safety_filter.detectors")} - set(BUILTIN)


def build_detectors(policy: Policy) -> list[Detector]:
    """The detectors `policy` turns on, built but not loaded (see `Detector.load`)."""
    factories = dict(BUILTIN)
    for entry in entry_points(group="safety_filter.detectors"):
        if entry.name not in factories and policy.detectors.plugin(entry.name).enabled:
            factories[entry.name] = entry.load()
    built = (factory(policy) for factory in factories.values())
    return [detector for detector in built if detector is not None]
