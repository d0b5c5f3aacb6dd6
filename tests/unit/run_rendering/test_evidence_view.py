"""The paired comparison as the console and the report show it (run_rendering/evidence_view.py):
a change is called better or worse only when the test says it is significant; per class; the
images whose prediction changed; no flat list of the baseline's metrics."""
import dataclasses

from inception_retrain.run_reading.record import EvaluationSection, RunRecord
from inception_retrain.run_rendering import compare, evidence_view, summary


def _evidence(verdict="no significant change", p_value=0.62):
    row = {"candidate": 0.75, "baseline": 0.5, "difference": 0.25, "interval": [-0.2, 0.7],
           "p_value": p_value, "examples": 4, "groups": None, "candidate_only_correct": 1,
           "baseline_only_correct": 0, "verdict": verdict}
    return {"split": "eval", "class_names": ["a", "b"], "examples": 4, "grouped": False,
            "evidence": {"min_examples_per_class": 1, "min_groups_per_class": 1,
                         "enough": True, "problems": []},
            "candidate": {"accuracy": 0.75, "ece": 0.125, "reliability": [
                {"low": 0.7, "high": 0.8, "count": 4, "confidence": 0.75, "accuracy": 0.75}]},
            "comparison": {"baseline": "served version 1", "level": 0.05,
                           "method": "exact McNemar test on the 4 paired eval images",
                           "overall": row, "per_class": {"a": dict(row, examples=2),
                                                         "b": dict(row, examples=2)},
                           "changed": [{"path": "a/1.jpg", "label": "a", "group": "a/1.jpg",
                                        "candidate": "a", "baseline": "b"}]},
            "rule": {"regression_rule": "point", "max_accuracy_drop": 0.0, "passed": True,
                     "text": "accuracy difference +0.250 (point estimate) >= -0.000"}}


def _record(evidence):
    evaluation = EvaluationSection(
        metrics={"sparse_categorical_accuracy": 0.75, "example_count": 4.0,
                 "example_count [baseline]": 4.0, "sparse_categorical_accuracy [baseline]": 0.5},
        per_class={}, baseline={"source": "served", "version": 1, "path": "/s/1"},
        blessed=True, failures=[], validation_ok=True, class_names=["a", "b"],
        evidence=evidence)
    return RunRecord(pipeline="p", evaluation=evaluation)


def test_the_console_shows_the_paired_comparison_per_class_not_a_flat_baseline_list():
    text = summary.render(_record(_evidence()))
    assert "example_count [baseline]" not in text
    assert ("difference +0.250 [-0.20, +0.70], p = 0.62 on 4 images: no significant change "
            "(level 0.05; exact McNemar test on the 4 paired eval images)") in text
    assert text.count("no significant change") == 3     # overall, a, b
    assert "a/1.jpg: b -> a (true a)" in text
    assert "expected calibration error 0.125" in text


def test_the_report_colours_a_difference_only_when_it_is_significant():
    evaluation = _record(_evidence()).evaluation
    page = compare.comparison_html(evaluation, ["a", "b"], {"a": 2, "b": 2})
    assert 'class="paired "' in page and 'class="num up"' not in page and "up\"" not in page
    significant = dataclasses.replace(evaluation, evidence=_evidence("better", 0.01))
    page = compare.comparison_html(significant, ["a", "b"], {"a": 2, "b": 2})
    assert 'class="paired up"' in page and page.count('<td class="up">better</td>') == 2
    assert "<td>a/1.jpg</td>" in page


def test_missing_evidence_and_group_results_are_shown():
    evidence = dict(_evidence(), grouped=True, evidence={
        "min_examples_per_class": 10, "min_groups_per_class": 3, "enough": False,
        "problems": ["not enough evidence: class b has 2 eval slides (minimum 3)"]})
    evidence["candidate"]["group_level"] = {
        "aggregation": "mean", "groups": 4, "accuracy": 0.5, "accuracy_interval": [0.15, 0.85],
        "per_class_recall": {"a": 1.0, "b": 0.0},
        "confusion": {"labels": ["a", "b"], "matrix": [[2, 0], [2, 0]]}}
    page = evidence_view.evidence_html(evidence)
    assert "not enough evidence: class b has 2 eval slides (minimum 3)" in page
    assert "Accuracy 0.500 [0.15, 0.85] on 4 groups" in page and 'class="confusion"' in page
    assert 'class="reliability"' in page
    assert ("per group (mean of tile predictions): accuracy 0.500 [0.15, 0.85] on 4 groups"
            in "\n".join(evidence_view.candidate_lines(evidence)))
