"""The Evaluator's evidence rules and record (components/evaluator/evidence_rules.py) on
hand-made predictions: the minimum-evidence sentences, the paired comparison and the changed
images, the no-regression rule (point or bound), the group-level floor and the final verdict;
and the record's round trip through evidence_contract."""
import json

import numpy as np
import pytest

from inception_retrain.components.evaluator import evidence_contract, evidence_rules
from inception_retrain.components.evaluator.evidence_rules import EvidenceSettings

CLASSES = ["a", "b", "c"]


def one_hot(ids, sure=0.8):
    scores = np.full((len(ids), len(CLASSES)), (1 - sure) / (len(CLASSES) - 1))
    scores[np.arange(len(ids)), ids] = sure
    return scores


def predictions(labels, candidate, baseline=None, groups=None):
    paths = [f"{CLASSES[label]}/{i}.png" for i, label in enumerate(labels)]
    return evidence_rules.Predictions(
        paths=paths, labels=np.asarray(labels), groups=groups or list(paths),
        candidate=one_hot(candidate), baseline=None if baseline is None else one_hot(baseline))


def test_not_enough_images_or_slides_is_one_sentence_per_class_and_minimum():
    labels = [0] * 12 + [1] * 6 + [2] * 2
    groups = [f"s{i % 4}" for i in range(12)] + ["t1"] * 6 + ["u1", "u2"]
    record = evidence_rules.build_record(
        CLASSES, predictions(labels, labels, groups=groups), grouped=True, split="eval",
        settings=EvidenceSettings(min_examples_per_class=10, min_groups_per_class=3))
    assert record["evidence"] == {
        "min_examples_per_class": 10, "min_groups_per_class": 3, "enough": False,
        "problems": ["not enough evidence: class b has 6 eval images (minimum 10)",
                     "not enough evidence: class b has 1 eval slides (minimum 3)",
                     "not enough evidence: class c has 2 eval images (minimum 10)",
                     "not enough evidence: class c has 2 eval slides (minimum 3)"]}
    assert record["per_class"] == {"a": {"examples": 12, "groups": 4},
                                   "b": {"examples": 6, "groups": 1},
                                   "c": {"examples": 2, "groups": 2}}
    assert record["groups"] == 7 and record["grouped"] is True


def test_ungrouped_data_counts_images_only():
    labels = [0] * 10 + [1] * 10 + [2] * 9
    record = evidence_rules.build_record(CLASSES, predictions(labels, labels), False, "test",
                                         EvidenceSettings(), gating=False)
    assert record["evidence"]["problems"] == [
        "not enough evidence: class c has 9 test images (minimum 10)"]
    assert record["per_class"]["a"] == {"examples": 10, "groups": None}
    assert record["groups"] is None and record["candidate"]["group_level"] is None
    assert record["comparison"] is record["rule"] is record["blessed"] is None
    assert record["candidate"]["accuracy"] == 1.0
    assert record["candidate"]["accuracy_interval_method"] == "95 % Wilson interval over 29 images"


def test_paired_comparison_per_class_and_changed_images():
    labels = [0] * 10 + [1] * 10 + [2] * 10
    baseline = list(labels)
    candidate = list(labels)
    for i in range(10, 18):  # the candidate misses 8 images of b, as c
        candidate[i] = 2
    baseline[20] = 0         # the baseline missed one image of c
    record = evidence_rules.build_record(
        CLASSES, predictions(labels, candidate, baseline), False, "eval", EvidenceSettings(),
        baseline_name="served version 1")
    comparison = record["comparison"]
    assert comparison["baseline"] == "served version 1" and comparison["level"] == 0.05
    assert comparison["method"].startswith("exact McNemar test on the 30 paired eval images")
    overall = comparison["overall"]
    assert overall["difference"] == pytest.approx(-7 / 30)
    assert (overall["candidate_only_correct"], overall["baseline_only_correct"]) == (1, 8)
    assert overall["p_value"] == pytest.approx(20 / 512)  # 2 * (1 + 9) / 2**9
    assert overall["verdict"] == "worse"
    assert comparison["per_class"]["b"]["difference"] == pytest.approx(-0.8)
    assert comparison["per_class"]["b"]["verdict"] == "worse"          # p = 2/256
    assert comparison["per_class"]["c"]["verdict"] == "no significant change"
    assert comparison["per_class"]["a"]["p_value"] == 1.0
    assert len(comparison["changed"]) == 9
    assert comparison["changed"][0] == {"path": "b/10.png", "label": "b", "group": "b/10.png",
                                        "candidate": "c", "baseline": "b"}
    assert record["rule"]["passed"] is False
    assert record["rule"]["text"] == "accuracy difference -0.233 (point estimate) < -0.000"


def test_the_issues_four_images_are_no_significant_change_and_bound_refuses_them():
    labels, baseline, candidate = [0, 1, 2, 0], [0, 1, 1, 1], [0, 1, 2, 1]
    point = evidence_rules.build_record(CLASSES, predictions(labels, candidate, baseline),
                                        False, "eval", EvidenceSettings())
    assert point["comparison"]["overall"]["difference"] == 0.25
    assert point["comparison"]["overall"]["verdict"] == "no significant change"
    assert point["rule"]["passed"] is True and "(point estimate) >=" in point["rule"]["text"]
    bound = evidence_rules.build_record(
        CLASSES, predictions(labels, candidate, baseline), False, "eval",
        EvidenceSettings(regression_rule="bound", max_accuracy_drop=0.05))
    rule = bound["rule"]
    assert rule["regression_rule"] == "bound" and rule["passed"] is False
    assert rule["text"].startswith("accuracy difference -0.")
    assert "(lower bound of the 95 % interval, exact McNemar test" in rule["text"]
    assert rule["text"].endswith("< -0.050")


def test_grouped_comparison_is_a_slide_bootstrap():
    labels = [0] * 12 + [1] * 12
    groups = [f"s{i // 3}" for i in range(24)]
    record = evidence_rules.build_record(
        CLASSES, predictions(labels, labels, labels, groups), True, "eval", EvidenceSettings())
    assert record["comparison"]["method"] == ("paired bootstrap over 8 slides (2000 resamples, "
                                              "percentile interval)")
    assert record["comparison"]["overall"]["groups"] == 8
    assert record["comparison"]["changed"] == []
    assert record["rule"]["passed"] is True


def test_group_level_results_and_their_floor():
    labels = [0] * 6 + [1] * 6
    groups = ["g1"] * 3 + ["g2"] * 3 + ["h1"] * 3 + ["h2"] * 3
    candidate = [0, 0, 1, 1, 1, 0] + [1] * 6   # g2 goes wrong by 2 tiles of 3
    settings = EvidenceSettings(min_group_accuracy=0.8, group_aggregation="majority")
    record = evidence_rules.build_record(CLASSES, predictions(labels, candidate, groups=groups),
                                         True, "eval", settings)
    group = record["candidate"]["group_level"]
    assert group["aggregation"] == "majority" and group["groups"] == 4
    assert group["accuracy"] == 0.75
    assert group["per_class_recall"] == {"a": 0.5, "b": 1.0, "c": None}
    assert group["confusion"] == {"labels": CLASSES,
                                  "matrix": [[1, 1, 0], [0, 2, 0], [0, 0, 0]]}
    assert record["min_group_accuracy"] == {
        "floor": 0.8, "value": 0.75, "passed": False,
        "text": "group-level accuracy 0.750 < 0.800"}


def test_decide_blesses_only_when_every_rule_passes():
    labels = [0] * 10 + [1] * 10 + [2] * 10
    good = evidence_rules.build_record(CLASSES, predictions(labels, labels), False, "eval",
                                       EvidenceSettings())
    assert good["rule"]["applied"] is False  # no baseline: nothing to regress against
    assert evidence_rules.decide(good, True, [])["blessed"] is True
    refused = evidence_rules.decide(good, False, ["TFMA threshold failed: x = 0.1000"])
    assert refused["blessed"] is False
    assert refused["reasons"] == ["TFMA threshold failed: x = 0.1000"]
    few = evidence_rules.build_record(CLASSES, predictions(labels[:25], labels[:25]), False,
                                      "eval", EvidenceSettings())
    decided = evidence_rules.decide(few, True, [])
    assert decided["blessed"] is False
    assert decided["reasons"] == ["not enough evidence: class c has 5 eval images (minimum 10)"]


def test_record_round_trip_keeps_json_plain(tmp_path):
    labels = [0, 1, 2]
    record = evidence_rules.build_record(CLASSES, predictions(labels, labels, labels), False,
                                         "eval", EvidenceSettings(min_examples_per_class=1))
    record["nan"] = float("nan")
    evidence_contract.write_evidence(str(tmp_path), record)
    text = (tmp_path / evidence_contract.EVIDENCE_FILE).read_text()
    assert "NaN" not in text
    back = evidence_contract.read_evidence(str(tmp_path))
    assert back["nan"] is None and back["comparison"]["overall"]["difference"] == 0.0
    assert json.loads(json.dumps(back)) == back
    assert evidence_contract.read_evidence(str(tmp_path / "none")) is None


def test_predictions_round_trip_into_the_rules(tmp_path):
    rows = [{"path": "a/1.png", "label": "a", "group": "a/1.png", "site": "",
             "candidate": [0.7, 0.2, 0.1], "baseline": [0.1, 0.8, 0.1]},
            {"path": "x/2.png", "label": "x", "group": "", "site": "lab",
             "candidate": [0.7, 0.2, 0.1], "baseline": [0.2, 0.7, 0.1]}]
    evidence_contract.write_predictions(str(tmp_path), rows)
    back = evidence_contract.read_predictions(str(tmp_path))
    assert back == rows
    parsed = evidence_rules.Predictions.from_rows(back, CLASSES)
    assert list(parsed.labels) == [0, -1]  # x: a class the model does not know
    assert parsed.groups == ["a/1.png", "x/2.png"]  # no group: the image is its own
    assert parsed.baseline.shape == (2, 3)
    record = evidence_rules.build_record(CLASSES, parsed, False, "eval",
                                         EvidenceSettings(min_examples_per_class=0))
    assert record["unknown_label_examples"] == 1
    assert record["comparison"]["changed"][1]["label"] == "(unknown to the model)"
