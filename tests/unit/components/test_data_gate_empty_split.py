"""Issue 13, item 11: an empty split stopped the DataGate with `statistics have no feature
'label'`; now the failure names the split and the classes that have no image in it."""
import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2

from inception_retrain.components.data_gate import checks


def _stats(label_counts=None, examples=0):
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = stats.datasets.add(num_examples=examples)
    if label_counts is not None:
        feature = dataset.features.add()
        feature.path.step.append("label")
        for name, count in label_counts.items():
            feature.string_stats.rank_histogram.buckets.add(label=name, sample_count=count)
    return stats


@pytest.mark.parametrize("stats", [_stats(), statistics_pb2.DatasetFeatureStatisticsList()],
                         ids=["zero-examples", "no-dataset"])
def test_an_empty_split_is_named_with_its_missing_classes(stats):
    """Item 11: 'split 'eval' is empty' instead of 'statistics have no feature 'label''."""
    counts = {"train": checks.class_counts(_stats({"a": 5, "b": 4}, 9), "label"),
              "eval": checks.class_counts(stats, "label")}
    assert counts["eval"] == {}
    verdict = checks.evaluate(counts, "train", 0, [], None, checks.GateThresholds())
    assert verdict.failures[0].startswith(
        "split 'eval' is empty: class(es) a, b have no readable image in it")


def test_a_split_with_examples_but_no_label_still_fails_plainly():
    with pytest.raises(checks.DataValidationError, match="statistics have no feature 'label'"):
        checks.class_counts(_stats(None, examples=3), "label")


def test_splits_with_examples_pass():
    counts = {"train": {"a": 5, "b": 5}, "eval": {"a": 1, "b": 1}}
    assert checks.evaluate(counts, "train", 0, [], None, checks.GateThresholds()).failures == []
