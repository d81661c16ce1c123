"""The policy: what to look for, how sure to be, and what to do about it.

A policy is a YAML file validated once at start-up (an invalid file fails with one message naming
the file, the key and the problem). `decide` is the only place where findings become a decision:
a pure function, testable with no model loaded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from safety_filter.errors import ConfigurationError
from safety_filter.findings import CATEGORIES, Action, CategoryResult, Finding, Severity, Verdict, Witness
from safety_filter.resources import default_policy_path

Role = Literal["prompt", "completion"]
ROLES: tuple[Role, ...] = ("prompt", "completion")

Score = Annotated[float, Field(ge=0.0, le=1.0)]


class PolicyError(ConfigurationError):
    """A policy file that cannot be used; the message names the file, key and problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleRule(_Strict):
    """For one category and one role: from which score on, and what to do."""

    threshold: Score = 0.5
    action: Literal["block", "annotate", "off"] = "block"

    @field_validator("action", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false


class CategoryRule(_Strict):
    prompt: RoleRule = RoleRule()
    completion: RoleRule = RoleRule()


class SeverityBands(_Strict):
    """Lower score bounds of each Azure severity; below `low` is `safe`."""

    low: Score = 0.25
    medium: Score = 0.5
    high: Score = 0.8

    @model_validator(mode="after")
    def _ascending(self) -> SeverityBands:
        if not self.low <= self.medium <= self.high:
            raise ValueError("severity bands must satisfy low <= medium <= high")
        return self

    def of(self, score: float) -> Severity:
        if score >= self.high:
            return Severity.HIGH
        if score >= self.medium:
            return Severity.MEDIUM
        if score >= self.low:
            return Severity.LOW
        return Severity.SAFE


class RulesSettings(_Strict):
    """`mention_weight`: the most a list entry weighs in a mention (`text.mentions`: a quoted
    passage that other words frame, the words after "called me a", "m'a traité de"..., or a
    claim after "it's not true that", "je refuse de dire que"...):
    counter-speech, victims and questions mention hate that way, so there the model must witness
    too. Below every threshold it applies to; 1.0 turns it off."""

    enabled: bool = True
    blocklists: tuple[str, ...] = ("default",)
    mention_weight: Annotated[float, Field(ge=0.0, le=1.0)] = 0.4


class ClassifierSettings(_Strict):
    enabled: bool = True
    model: str = "default"
    threads: Annotated[int, Field(ge=1, le=64)] = 1
    cascade: bool = True


class NCIISettings(_Strict):
    enabled: bool = True


class PluginSettings(BaseModel):
    """A plugin detector's own section under `detectors:`: `enabled`, and whatever else it reads.

    Its other keys are the plugin's to validate (`model_extra`, or as attributes).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    enabled: bool = True


class DetectorSettings(_Strict):
    """Built-in detectors and engine limits; any other key must name an installed plugin detector.

    A plugin's section (`PluginSettings`) is checked against the `safety_filter.detectors`
    entry points, so a misspelt built-in name still fails as an unknown key.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, PluginSettings] = Field(init=False)

    rules: RulesSettings = RulesSettings()
    classifier: ClassifierSettings = ClassifierSettings()
    ncii: NCIISettings = NCIISettings()
    timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    batch_size: Annotated[int, Field(ge=1, le=1024)] = 32
    cache_size: Annotated[int, Field(ge=0)] = 8192
    # Characters waiting to be scored past which a check is refused at once (503, Retry-After).
    max_queued_chars: Annotated[int, Field(ge=1)] = 1048576
    # Longer texts are scored in overlapping segments of this size, so one cannot hold the worker.
    piece_chars: Annotated[int, Field(ge=1024)] = 4096

    @model_validator(mode="before")
    @classmethod
    def _plugins_only(cls, data: object) -> object:
        if isinstance(data, Mapping):
            unknown = [key for key in data if key not in cls.model_fields]
            if unknown:
                from safety_filter.detectors import plugin_names

                installed = plugin_names()
                for key in unknown:
                    if key not in installed:
                        plugins = ", ".join(sorted(installed)) or "none"
                        raise PydanticCustomError(
                            "unknown_detector",
                            "{key}: unknown key (check its spelling; plugin detectors installed: {plugins})",
                            {"key": key, "plugins": plugins},
                        )
        return data

    def plugin(self, name: str) -> PluginSettings:
        """The section of plugin detector `name` (defaults when the policy has none)."""
        extra = self.model_extra or {}
        return extra.get(name, PluginSettings())


class StreamingSettings(_Strict):
    """How the stream guard trades time-to-first-token against context.

    A check waits for `check_every_chars` new characters, then for a sentence to end, and reads
    up to the last sentence end (so each sentence is scored once, whole); with no sentence end in
    `sentence_wait_chars` unchecked characters it reads them all (0: never wait for one). The
    last `holdback_chars` of checked text are still held back so a phrase split across events is
    seen whole before any of it is released (keep it at least as long as the longest list
    phrase). Each check sees the new text plus up to `context_chars` before it.
    """

    check_every_chars: Annotated[int, Field(ge=1)] = 64
    sentence_wait_chars: Annotated[int, Field(ge=0)] = 320
    holdback_chars: Annotated[int, Field(ge=0)] = 96
    context_chars: Annotated[int, Field(ge=0)] = 1000


class Limits(_Strict):
    max_request_bytes: Annotated[int, Field(ge=1)] = 2 * 1024 * 1024
    max_response_bytes: Annotated[int, Field(ge=1)] = 16 * 1024 * 1024
    max_texts_per_request: Annotated[int, Field(ge=1)] = 4096
    max_text_chars: Annotated[int, Field(ge=1)] = 524288  # characters scored per request (413 past it)


class AuditSettings(_Strict):
    sink: str | None = None
    include_excerpts: bool = False
    redact: bool = True


class Policy(_Strict):
    """A validated policy. Build it with `load_policy`, `Policy.default()` or `Policy.model_validate`."""

    version: str = "1"
    fail_mode: Literal["closed", "open"] = "closed"
    annotations: Literal["never", "flagged", "always"] = "flagged"
    severity: SeverityBands = SeverityBands()
    categories: Mapping[str, CategoryRule] = Field(default_factory=dict)
    custom_categories: CategoryRule = CategoryRule()
    detectors: DetectorSettings = DetectorSettings()
    streaming: StreamingSettings = StreamingSettings()
    limits: Limits = Limits()
    audit: AuditSettings = AuditSettings()
    routes: tuple[str, ...] = ()
    # `serve` forwards only inspected routes and these "METHOD path-regex" entries (JSON 404 else).
    passthrough_routes: tuple[str, ...] = ("GET /v1/models", "GET /v1/models/[^/]+", "GET /health", "GET /v1/health")
    # Request fields that are model input but cannot be read as text (chat_template...): refused
    # with a 400 unless named here.
    passthrough_fields: tuple[str, ...] = ()
    reload_interval_seconds: Annotated[float, Field(ge=0)] = 2.0
    source: str = Field(default="<inline>", exclude=True)
    digest: str = Field(default="", exclude=True)

    @field_validator("passthrough_routes")
    @classmethod
    def _method_and_pattern(cls, routes: tuple[str, ...]) -> tuple[str, ...]:
        for route in routes:
            method, _, pattern = route.partition(" ")
            if not method.isupper() or not pattern.startswith("/"):
                raise ValueError(f"{route!r} must be 'METHOD /path-regex', e.g. 'GET /v1/models'")
            re.compile(pattern)
        return routes

    def passes_through(self, method: str, path: str) -> bool:
        """Whether `serve` may forward this (uninspected) route as it is."""
        for route in self.passthrough_routes:
            allowed, _, pattern = route.partition(" ")
            if method == allowed and re.fullmatch(pattern, path):
                return True
        return False

    @model_validator(mode="after")
    def _all_categories(self) -> Policy:
        missing = [c for c in CATEGORIES if c not in self.categories]
        if missing:
            raise ValueError(f"categories: missing {', '.join(missing)} (all of {', '.join(CATEGORIES)} are required)")
        return self

    def rule(self, category: str, role: Role) -> RoleRule:
        rules = self.categories.get(category, self.custom_categories)
        return getattr(rules, role)

    @property
    def label(self) -> str:
        """Identifies this exact policy in the audit trail: its version and content hash."""
        return f"{self.version}@{self.digest[:12]}" if self.digest else self.version

    @classmethod
    def default(cls) -> Policy:
        return load_policy(None)


def load_policy(path: str | Path | None) -> Policy:
    """Read and validate a policy file (the shipped default when `path` is None)."""
    path = Path(path) if path is not None else default_policy_path()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"policy file {path}: cannot read it ({exc.strerror or exc})") from None
    return parse_policy(raw, source=str(path))


def parse_policy(raw: bytes | str, *, source: str = "<inline>") -> Policy:
    data_bytes = raw.encode() if isinstance(raw, str) else raw
    try:
        data = yaml.safe_load(data_bytes)
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {source}: the top level must be a mapping of keys to settings")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        elif "input" in first and not isinstance(first["input"], dict | list):
            message = f"{message} (got {first['input']!r})"
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise PolicyError(f"policy file {source}: {key}: {message}{more}") from None
    return policy.model_copy(update={"source": source, "digest": hashlib.sha256(data_bytes).hexdigest()})


def decide(findings: Iterable[Finding], policy: Policy, role: Role) -> Verdict:
    """Turn the findings for one text into a verdict under `policy` for `role`.

    Rule lists and models are two kinds of witness (`Finding.witness`). For each category, the
    strongest list hit and the strongest model score (classifier, NCII detector: they read context
    and agree too often to count twice) combine as a noisy-OR, `1 - (1 - list)(1 - model)`: a list term of
    moderate weight plus a fairly confident model outweigh either alone, while a term quoted in
    counter-speech (the model near 0) stays below the threshold. Terms weighted 1.0 decide alone.

    A category is filtered when its combined score reaches the role's threshold and its action is
    not `off`. It then asks for the category's action, or, when every finding in it comes from a
    list that carries its own action, the strongest of those. The verdict blocks if a filtered
    category asks to block, annotates if one asks to annotate, and allows otherwise.
    """
    findings = tuple(findings)
    witnesses: dict[str, list[float]] = {category: [0.0, 0.0] for category in CATEGORIES}
    for finding in findings:
        pair = witnesses.setdefault(finding.category, [0.0, 0.0])
        kind = 0 if finding.witness is Witness.LIST else 1
        pair[kind] = max(pair[kind], finding.score)
    results: dict[str, CategoryResult] = {}
    action = Action.ALLOW
    for category, (listed, modelled) in witnesses.items():
        score = 1.0 - (1.0 - listed) * (1.0 - modelled)
        rule = policy.rule(category, role)
        filtered = rule.action != "off" and score > 0.0 and score >= rule.threshold
        if filtered:
            asked = {f.action or Action(rule.action) for f in findings if f.category == category}
            action = strongest((action, *asked))
        results[category] = CategoryResult(score=score, severity=policy.severity.of(score), filtered=filtered)
    return Verdict(action=action, categories=results, findings=findings, policy_version=policy.label)


def failed_verdict(policy: Policy, error: str) -> Verdict:
    """The verdict for a text that could not be inspected: the fail mode decides.

    `closed` blocks it; `open` lets it through, annotated with the error.
    """
    action = Action.BLOCK if policy.fail_mode == "closed" else Action.ANNOTATE
    results = {c: CategoryResult(score=0.0, severity=Severity.SAFE, filtered=False) for c in CATEGORIES}
    return Verdict(action=action, categories=results, error=error, policy_version=policy.label)


def merge(verdicts: Sequence[Verdict], policy: Policy) -> Verdict:
    """One verdict for several texts read as one unit (all messages of a prompt)."""
    if not verdicts:
        return decide((), policy, "prompt")
    if len(verdicts) == 1:
        return verdicts[0]
    categories: dict[str, CategoryResult] = {}
    for verdict in verdicts:
        for name, result in verdict.categories.items():
            best = categories.get(name)
            if best is None or (result.filtered, result.score) > (best.filtered, best.score):
                categories[name] = result
    action = strongest(v.action for v in verdicts)
    errors = [v.error for v in verdicts if v.error]
    return Verdict(
        action=action,
        categories=categories,
        findings=tuple(f for v in verdicts for f in v.findings),
        error="; ".join(dict.fromkeys(errors)) or None,
        policy_version=verdicts[0].policy_version,
    )


def strongest(actions: Iterable[Action]) -> Action:
    return max(actions, key=lambda action: action.rank, default=Action.ALLOW)
