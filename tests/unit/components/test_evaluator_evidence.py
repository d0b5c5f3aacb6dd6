"""The statistics of the Evaluator's verdict (components/evaluator/evidence.py) on known
tables: exact McNemar against scipy's binomial test and hand-computed values, Wilson against
scipy, Newcombe's paired interval, the group bootstrap, group aggregation and calibration."""
import math

import numpy as np
import pytest

from inception_retrain.components.evaluator import evidence

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("b, c, expected", [(0, 6, 0.03125), (1, 1, 1.0), (0, 0, 1.0),
                                            (6, 0, 0.03125), (0, 1, 1.0), (2, 3, 1.0)])
def test_exact_mcnemar_on_hand_computed_tables(b, c, expected):
    assert evidence.mcnemar_exact(b, c) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("b, c", [(0, 6), (1, 9), (3, 12), (10, 20), (40, 61), (7, 7)])
def test_exact_mcnemar_is_the_two_sided_binomial_test(b, c):
    assert evidence.mcnemar_exact(b, c) == pytest.approx(
        scipy_stats.binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-9)


@pytest.mark.parametrize("k, n", [(0, 10), (8, 10), (10, 10), (3, 40), (117, 230)])
@pytest.mark.parametrize("level", [0.05, 0.01])
def test_wilson_interval_matches_scipy(k, n, level):
    expected = scipy_stats.binomtest(k, n).proportion_ci(1 - level, method="wilson")
    assert evidence.wilson_interval(k, n, level) == pytest.approx(
        (expected.low, expected.high), abs=1e-9)
    assert evidence.wilson_interval(0, 0) == (None, None)


def _wilson(k, n):
    ci = scipy_stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return ci.low, ci.high


def test_newcombe_paired_interval_by_hand():
    """a=30 both right, b=6 only the candidate, c=2 only the baseline, d=2 neither (n=40)."""
    a, b, c, d = 30, 6, 2, 2
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = _wilson(a + b, n), _wilson(a + c, n)
    phi = (a * d - b * c) / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    low = p1 - p2 - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = p1 - p2 + math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    found = evidence.newcombe_paired_interval(a, b, c, d)
    assert found == pytest.approx((low, high), abs=1e-9)
    assert found[0] < 0.1 < found[1]


def test_newcombe_paired_interval_is_antisymmetric_and_narrowed_by_correlation():
    low, high = evidence.newcombe_paired_interval(30, 6, 2, 2)
    assert evidence.newcombe_paired_interval(30, 2, 6, 2) == pytest.approx((-high, -low))
    # The same margins without correlation (a*d = b*c): a wider interval.
    uncorrelated = evidence.newcombe_paired_interval(4, 2, 2, 1)
    correlated = evidence.newcombe_paired_interval(7, 0, 0, 2)
    assert correlated[1] - correlated[0] < uncorrelated[1] - uncorrelated[0]
    assert evidence.newcombe_paired_interval(0, 0, 0, 0) == (None, None)


def test_mcnemar_comparison_calls_four_images_no_significant_change():
    """The issue's case: +0.25 on 4 eval images is one discordant pair, p = 1."""
    result = evidence.mcnemar_comparison([1, 1, 1, 0], [1, 1, 0, 0])
    assert result.difference == 0.25 and result.p_value == 1.0 and not result.significant
    assert (result.candidate_only_correct, result.baseline_only_correct) == (1, 0)
    assert result.interval[0] < 0 < result.interval[1]


def _one_slide_changes():
    """Slide s0: 12 tiles only the candidate gets right; s1..s3: 4 tiles each, both right."""
    groups = ["s0"] * 12 + [f"s{i}" for i in (1, 2, 3) for _ in range(4)]
    candidate = [True] * 24
    baseline = [False] * 12 + [True] * 12
    return candidate, baseline, groups


def test_bootstrap_resamples_slides_not_tiles():
    """Tile by tile the 12 discordant tiles look decisive; they are one slide, and the
    group bootstrap says so."""
    candidate, baseline, groups = _one_slide_changes()
    tiles = evidence.mcnemar_comparison(candidate, baseline)
    assert tiles.significant and tiles.p_value == pytest.approx(2 / 4096)
    slides = evidence.bootstrap_comparison(candidate, baseline, groups)
    assert slides.groups == 4 and slides.examples == 24
    assert slides.difference == pytest.approx(0.5)
    assert slides.interval[0] <= 0 < slides.interval[1]
    assert not slides.significant and slides.p_value > 0.3
    assert slides == evidence.bootstrap_comparison(candidate, baseline, groups)  # seeded


def test_bootstrap_of_a_consistent_change_is_significant_and_no_change_is_not():
    groups = [f"s{i}" for i in range(10) for _ in range(3)]
    candidate = [True] * 30
    baseline = [i % 3 != 0 for i in range(30)]  # the baseline misses one tile on every slide
    result = evidence.bootstrap_comparison(candidate, baseline, groups)
    assert result.significant and result.interval == pytest.approx((1 / 3, 1 / 3))
    assert result.p_value == 0.0
    same = evidence.bootstrap_comparison(baseline, baseline, groups)
    assert not same.significant and same.p_value == 1.0 and same.interval == (0.0, 0.0)


def test_bootstrap_accuracy_interval_is_by_group():
    groups = ["a"] * 10 + ["b"] * 10
    interval = evidence.bootstrap_accuracy([True] * 10 + [False] * 10, groups)
    assert interval == (0.0, 1.0)  # two slides: all of one, or all of the other, is possible


def test_mean_and_majority_aggregation_differ_on_a_crafted_slide():
    """Two tiles lean to class 1, one is sure of class 0: the mean says 0, the vote says 1."""
    scores = np.array([[0.45, 0.55], [0.45, 0.55], [1.0, 0.0], [0.1, 0.9]])
    groups, labels = ["g", "g", "g", "h"], [0, 0, 1, 1]
    mean = evidence.aggregate_groups(groups, labels, scores, "mean")
    majority = evidence.aggregate_groups(groups, labels, scores, "majority")
    assert mean.groups == majority.groups == ["g", "h"]
    assert list(mean.labels) == list(majority.labels) == [0, 1]  # the majority tile label
    assert list(mean.predictions) == [0, 1]
    assert list(majority.predictions) == [1, 1]
    with pytest.raises(ValueError, match="median"):
        evidence.aggregate_groups(groups, labels, scores, "median")


def test_a_majority_tie_goes_to_the_higher_mean_score():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.0, 0.3, 0.7], [0.0, 0.6, 0.4]])
    grouped = evidence.aggregate_groups(["g"] * 4, [2, 2, 1, 1], scores, "majority")
    assert list(grouped.predictions) == [1]  # votes 0:1, 1:2, 2:1
    one_each = np.array([[0.6, 0.4, 0.0], [0.0, 1.0, 0.0]])  # a vote each; means 0.3 and 0.7
    tied = evidence.aggregate_groups(["g"] * 2, [0, 1], one_each, "majority")
    assert list(tied.predictions) == [1]
    assert list(tied.labels) == [0]  # a tie of labels: the lower class id


def test_confusion_and_recall_per_class():
    assert evidence.confusion([0, 0, 1, 2], [0, 1, 1, 1], 3) == [[1, 1, 0], [0, 1, 0],
                                                                 [0, 1, 0]]
    assert evidence.recall_per_class([0, 0, 1], [0, 1, 1], 3) == [0.5, 1.0, None]


def test_expected_calibration_error_on_a_crafted_case():
    """Bin 0.9-1.0: confidences 0.95 and 1.0, one right (accuracy 0.5); bin 0.6-0.7: two at
    0.65, both right. ECE = 0.5 * |0.5 - 0.975| + 0.5 * |1 - 0.65| = 0.4125."""
    scores = np.array([[0.95, 0.05], [0.0, 1.0], [0.65, 0.35], [0.35, 0.65]])
    ece, bins = evidence.calibration(scores, [0, 0, 0, 1])
    assert ece == pytest.approx(0.5 * 0.475 + 0.5 * 0.35)
    assert bins == [
        {"low": 0.6, "high": 0.7, "count": 2, "confidence": pytest.approx(0.65),
         "accuracy": 1.0},
        {"low": 0.9, "high": 1.0, "count": 2, "confidence": pytest.approx(0.975),
         "accuracy": 0.5}]
    assert evidence.calibration(np.zeros((0, 2)), []) == (None, [])
