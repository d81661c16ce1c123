"""classifiers.list_witness: the weight a list entry could drop to with the model as second witness."""

from __future__ import annotations

import pytest

from classifiers.list_witness import _entry


def test_safe_weight_keeps_the_weakest_harmful_hit_at_the_threshold():
    entry = _entry(1.0, 0.6, harmful=[0.5, 0.9], benign=[0.0, 0.1, 0.3, 0.7])
    # 1 - (1 - w) * (1 - 0.5) = 0.6  ->  w = 0.2
    assert entry["safe_weight"] == pytest.approx(0.2)
    assert 1 - (1 - entry["safe_weight"]) * (1 - 0.5) == pytest.approx(0.6)
    # benign rows the lowered weight no longer blocks: combined 0.2, 0.28 and 0.44 stay below 0.6
    assert entry["benign_freed"] == 3
    assert entry["decides_alone_on_benign"] == 3  # the 0.7 row is the model's own block


def test_a_model_blind_to_real_uses_leaves_the_weight_at_the_threshold():
    entry = _entry(1.0, 0.6, harmful=[0.0, 0.8], benign=[0.0, 0.0])
    assert entry["safe_weight"] == pytest.approx(0.6)
    assert entry["benign_freed"] == 0


def test_no_harmful_hit_is_no_evidence_for_a_lower_weight():
    entry = _entry(1.0, 0.55, harmful=[], benign=[0.0, 0.0])
    assert entry["safe_weight"] is None and entry["benign_freed"] is None
    assert entry["model_on_harmful"] is None and entry["model_on_benign"] == {"min": 0.0, "median": 0.0, "max": 0.0}
