"""Policy files are validated once, with errors naming file, key and problem; `decide` is pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety_filter import Finding, Policy, PolicyError, decide, load_policy
from safety_filter.findings import Action, Severity, Witness
from safety_filter.policy import merge


def test_shipped_policy_loads_with_all_categories() -> None:
    policy = Policy.default()
    assert set(policy.categories) == {"hate", "extremism", "non_consensual", "sexual"}
    assert policy.fail_mode == "closed"
    assert policy.label.startswith("default-1@")


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("categories: {hate: {prompt: {threshold: 1.5}}}", "categories.hate.prompt.threshold"),
        ("fail_mode: sideways", "fail_mode"),
        ("categories: {hate: {prompt: {action: delete}}}", "categories.hate.prompt.action"),
        ("streaming: {check_every_char: 10}", "streaming.check_every_char: unknown key"),
        ("severity: {low: 0.9, medium: 0.5}", "severity"),
        ("- just\n- a list", "top level must be a mapping"),
        ("categories: [", "not valid YAML"),
    ],
)
def test_invalid_policy_names_file_key_and_problem(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml_text)
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_missing_category_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("categories: {hate: {}}")
    with pytest.raises(PolicyError, match="missing extremism, non_consensual, sexual"):
        load_policy(path)


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")


def test_decide_takes_the_strongest_finding_and_maps_severity() -> None:
    policy = Policy.default()
    findings = [Finding("hate", 0.3, "a"), Finding("hate", 0.85, "a"), Finding("sexual", 0.55, "c")]
    verdict = decide(findings, policy, "completion")
    assert verdict.action is Action.BLOCK
    assert verdict.categories["hate"].score == 0.85
    assert verdict.categories["hate"].severity is Severity.HIGH
    assert verdict.categories["sexual"].filtered is (policy.rule("sexual", "completion").threshold <= 0.55)
    assert verdict.categories["extremism"].severity is Severity.SAFE


def test_annotate_and_off_actions() -> None:
    policy = Policy.default()
    assert decide([Finding("sexual", 0.9, "x")], policy, "prompt").action is Action.ANNOTATE
    data = policy.model_dump()
    data["categories"]["hate"]["prompt"] = {"threshold": 0.1, "action": "off"}
    relaxed = Policy.model_validate(data)
    verdict = decide([Finding("hate", 0.99, "x")], relaxed, "prompt")
    assert verdict.action is Action.ALLOW and not verdict.categories["hate"].filtered


def test_custom_category_uses_custom_rule() -> None:
    verdict = decide([Finding("spam-campaign", 1.0, "rules")], Policy.default(), "prompt")
    assert verdict.action is Action.BLOCK
    assert verdict.categories["spam-campaign"].filtered


def test_merge_keeps_the_strongest_action_and_all_findings() -> None:
    policy = Policy.default()
    verdicts = [decide([], policy, "prompt"), decide([Finding("hate", 0.9, "x")], policy, "prompt")]
    merged = merge(verdicts, policy)
    assert merged.action is Action.BLOCK and len(merged.findings) == 1


def test_finding_rejects_out_of_range_scores() -> None:
    with pytest.raises(ValueError):
        Finding("hate", 1.2, "x")


def test_a_list_action_overrides_the_category_action_but_not_off() -> None:
    policy = Policy.default()
    watch = Finding("hate", 1.0, "rules", rule_id="watch:term", action=Action.ANNOTATE)
    assert decide([watch], policy, "prompt").action is Action.ANNOTATE
    data = policy.model_dump()
    data["categories"]["hate"]["prompt"] = {"threshold": 0.5, "action": "off"}
    assert decide([watch], Policy.model_validate(data), "prompt").action is Action.ALLOW


def listed(category: str, score: float, source: str = "rules") -> Finding:
    return Finding(category, score, source, witness=Witness.LIST)


def test_lists_and_models_combine_as_noisy_or() -> None:
    policy = Policy.default()
    threshold = policy.rule("hate", "prompt").threshold
    rule_alone = decide([listed("hate", threshold - 0.2)], policy, "prompt")
    assert rule_alone.action is Action.ALLOW
    both = decide([listed("hate", threshold - 0.2), Finding("hate", 0.5, "classifier")], policy, "prompt")
    assert both.categories["hate"].score == pytest.approx(1 - (1.2 - threshold) * 0.5)
    assert both.action is Action.BLOCK
    two_lists = decide([listed("hate", 0.4), listed("hate", 0.5)], policy, "prompt")
    assert two_lists.categories["hate"].score == pytest.approx(0.5)  # one witness: its strongest finding
    two_models = decide([Finding("hate", 0.4, "ncii"), Finding("hate", 0.5, "classifier")], policy, "prompt")
    assert two_models.categories["hate"].score == pytest.approx(0.5)


def test_the_witness_kind_not_the_detector_name_makes_a_list_hit() -> None:
    policy = Policy.default()
    # a plugin's list counts as the list witness; a model that happens to be called "rules" does not
    plugin_list = decide([listed("hate", 0.4, "my-lists"), Finding("hate", 0.5, "classifier")], policy, "prompt")
    assert plugin_list.categories["hate"].score == pytest.approx(1 - 0.6 * 0.5)
    named_rules = decide([Finding("hate", 0.4, "rules"), Finding("hate", 0.5, "classifier")], policy, "prompt")
    assert named_rules.categories["hate"].score == pytest.approx(0.5)
