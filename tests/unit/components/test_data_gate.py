"""DataGate: balance, drift and bad-file rules on counts; then the real pipeline on an
imbalanced folder stops before the Trainer, and the warn setting lets it pass with a record
(tests/e2e/test_data_gate_pipeline.py)."""

import pytest

from inception_retrain.components.data_gate import checks

STRICT = checks.GateThresholds(min_examples_per_class=3, max_class_ratio=4.0,
                               min_class_fraction=0.1)


def test_balance_messages_name_classes_and_counts():
    problems = checks.balance_problems({"tumor": 40, "stroma": 9, "debris": 2}, STRICT)
    assert len(problems) == 3
    assert "debris: 2" in problems[0] and "min_examples_per_class" in problems[0]
    assert "tumor has 40" in problems[1] and "debris has 2" in problems[1] and "20.0" in problems[1]
    assert "debris: 2 (3.9%)" in problems[2]


def test_balanced_counts_pass_and_zero_switches_checks_off():
    assert checks.balance_problems({"a": 10, "b": 8}, STRICT) == []
    off = checks.GateThresholds(min_examples_per_class=1, max_class_ratio=0,
                                min_class_fraction=0)
    assert checks.balance_problems({"a": 1000, "b": 1}, off) == []


def test_label_drift_is_the_l_infinity_distance():
    distance, worst = checks.label_drift({"a": 50, "b": 50}, {"a": 80, "b": 10, "c": 10})
    assert distance == pytest.approx(0.4) and worst == "b"  # b: 10% -> 50%
    assert checks.label_drift({"a": 5, "b": 5}, {"a": 50, "b": 50}) == (0.0, "a")
    message = checks.drift_problems({"a": 50, "b": 50}, {"a": 80, "b": 20}, 3,
                                    checks.GateThresholds(max_label_drift=0.2))
    assert "span 3" in message[0] and "0.300" in message[0] and "80.0% -> 50.0%" in message[0]


def test_policies_route_problems_to_failures_or_warnings():
    counts = {"train": {"a": 50, "b": 2}, "eval": {"a": 10, "b": 1}}
    previous = (1, {"a": 10, "b": 10})
    failing = checks.evaluate(counts, "train", 0, [], previous,
                              checks.GateThresholds(on_drift="fail"))
    assert len(failing.failures) == 2 and not failing.warnings
    warning = checks.evaluate(counts, "train", 0, [], previous,
                              checks.GateThresholds(on_imbalance="warn"))
    assert len(warning.warnings) == 2 and not warning.failures
    bad_files = checks.evaluate(counts, "train", 10, [], None,
                                checks.GateThresholds(on_imbalance="warn"))
    assert any("10 of 73 files" in f for f in bad_files.failures)
    absent = checks.evaluate({"train": {"a": 5}, "eval": {"a": 1, "b": 1}}, "train", 0, [], None,
                             checks.GateThresholds(on_imbalance="warn"))
    assert any("b have no example" in f for f in absent.failures)


def test_class_weights_are_inverse_frequency_with_mean_one():
    counts = {"a": 30, "b": 10}
    weights = checks.class_weights(counts)
    assert weights == pytest.approx({"a": 40 / 60, "b": 40 / 20})
    assert sum(weights[c] * n for c, n in counts.items()) == pytest.approx(sum(counts.values()))
