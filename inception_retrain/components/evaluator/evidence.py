"""The statistics behind the Evaluator's verdict, in plain Python and numpy (no TensorFlow).

Intervals for an accuracy (Wilson), the paired comparison of two models on the same examples
(exact McNemar test with Newcombe's interval for the paired difference, or a paired bootstrap
that resamples groups, i.e. slides, when tiles of one slide are not independent), tile
predictions aggregated per group, and the expected calibration error. Rules and the evidence
record are built from these in components.evaluator.evidence_rules.
"""
import dataclasses
import math
import statistics
from fractions import Fraction
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from inception_retrain.components.evaluator.evidence_contract import AGGREGATIONS

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240613     # fixed: the same predictions always give the same interval
CALIBRATION_BINS = 10

Interval = Tuple[Optional[float], Optional[float]]


def _z(level: float) -> float:
    """The two-sided normal quantile for significance level `level` (1.96 for 0.05)."""
    return statistics.NormalDist().inv_cdf(1 - level / 2)


def wilson_interval(successes: int, n: int, level: float = 0.05) -> Interval:
    """Wilson score interval of a proportion at confidence 1 - level; (None, None) when n = 0."""
    if n == 0:
        return None, None
    z = _z(level)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(candidate_only: int, baseline_only: int) -> float:
    """Exact two-sided McNemar p-value from the discordant pairs b, c:
    min(1, 2 P(X <= min(b, c))) with X ~ Bin(b + c, 1/2); 1 when there are none."""
    n = candidate_only + baseline_only
    if n == 0:
        return 1.0
    k = min(candidate_only, baseline_only)
    tail = Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2 ** n)
    return float(min(Fraction(1), 2 * tail))


def newcombe_paired_interval(both: int, candidate_only: int, baseline_only: int,
                             neither: int, level: float = 0.05) -> Interval:
    """Newcombe's (1998) method 10 for the difference of two paired proportions
    (candidate accuracy - baseline accuracy): the two Wilson intervals combined with the
    phi correlation of the 2x2 table (no continuity correction)."""
    a, b, c, d = both, candidate_only, baseline_only, neither
    n = a + b + c + d
    if n == 0:
        return None, None
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, level)
    l2, u2 = wilson_interval(a + c, n, level)
    denominator = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(denominator) if denominator else 0.0
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)
                          + (u2 - p2) ** 2))
    epsilon = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2)
                            + (p2 - l2) ** 2))
    difference = p1 - p2
    return max(-1.0, difference - delta), min(1.0, difference + epsilon)


@dataclasses.dataclass(frozen=True)
class PairedResult:
    """Candidate against baseline on the same examples: accuracies, their difference with an
    interval at 1 - level, a two-sided p-value, and whether the difference is significant."""

    candidate: Optional[float]
    baseline: Optional[float]
    difference: Optional[float]
    interval: Interval
    p_value: float
    significant: bool
    examples: int
    groups: Optional[int]
    candidate_only_correct: int
    baseline_only_correct: int


def _discordant(candidate_correct: np.ndarray, baseline_correct: np.ndarray):
    both = int(np.sum(candidate_correct & baseline_correct))
    candidate_only = int(np.sum(candidate_correct & ~baseline_correct))
    baseline_only = int(np.sum(~candidate_correct & baseline_correct))
    return both, candidate_only, baseline_only, len(candidate_correct) - both - candidate_only \
        - baseline_only


def mcnemar_comparison(candidate_correct: Sequence[bool], baseline_correct: Sequence[bool],
                       level: float = 0.05) -> PairedResult:
    """The paired comparison of independent examples: exact McNemar test, Newcombe interval;
    significant when p < level."""
    cand, base = np.asarray(candidate_correct, bool), np.asarray(baseline_correct, bool)
    both, cand_only, base_only, neither = _discordant(cand, base)
    n = len(cand)
    p_value = mcnemar_exact(cand_only, base_only)
    return PairedResult(
        candidate=float(cand.mean()) if n else None, baseline=float(base.mean()) if n else None,
        difference=(cand_only - base_only) / n if n else None,
        interval=newcombe_paired_interval(both, cand_only, base_only, neither, level),
        p_value=p_value, significant=n > 0 and p_value < level, examples=n, groups=None,
        candidate_only_correct=cand_only, baseline_only_correct=base_only)


def _group_sums(values: np.ndarray, groups: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Per distinct group (sorted): the sum of values and the number of examples."""
    _, index = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    sums = np.bincount(index, weights=values.astype(float))
    counts = np.bincount(index).astype(float)
    return sums, counts


def bootstrap_resamples(num_groups: int, resamples: int = BOOTSTRAP_RESAMPLES,
                        seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """How often each group is drawn in each resample: [resamples, groups] counts of drawing
    num_groups groups with replacement (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, num_groups, size=(resamples, num_groups))
    return np.stack([np.bincount(row, minlength=num_groups) for row in draws])


def bootstrap_accuracy(correct: Sequence[bool], groups: Sequence[str], level: float = 0.05,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
                       ) -> Interval:
    """Percentile interval of an accuracy whose examples are resampled by group."""
    correct = np.asarray(correct, bool)
    if len(correct) == 0:
        return None, None
    sums, counts = _group_sums(correct, groups)
    weights = bootstrap_resamples(len(sums), resamples, seed)
    accuracies = (weights @ sums) / (weights @ counts)
    low, high = np.quantile(accuracies, [level / 2, 1 - level / 2])
    return float(low), float(high)


def bootstrap_comparison(candidate_correct: Sequence[bool], baseline_correct: Sequence[bool],
                         groups: Sequence[str], level: float = 0.05,
                         resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
                         ) -> PairedResult:
    """The paired comparison when examples come in groups (tiles of a slide): both models'
    correctness is resampled together, group by group; the accuracy difference's percentile
    interval at 1 - level, p = min(1, 2 min(P*(d <= 0), P*(d >= 0))) over the resamples;
    significant when the interval excludes 0."""
    cand, base = np.asarray(candidate_correct, bool), np.asarray(baseline_correct, bool)
    _, cand_only, base_only, _ = _discordant(cand, base)
    n = len(cand)
    if n == 0:
        return PairedResult(None, None, None, (None, None), 1.0, False, 0, 0, 0, 0)
    difference_sums, counts = _group_sums(cand.astype(int) - base.astype(int), groups)
    weights = bootstrap_resamples(len(counts), resamples, seed)
    differences = (weights @ difference_sums) / (weights @ counts)
    low, high = (float(v) for v in np.quantile(differences, [level / 2, 1 - level / 2]))
    p_value = min(1.0, 2 * min(float(np.mean(differences <= 0)),
                               float(np.mean(differences >= 0))))
    return PairedResult(
        candidate=float(cand.mean()), baseline=float(base.mean()),
        difference=(cand_only - base_only) / n, interval=(low, high), p_value=p_value,
        significant=low > 0 or high < 0, examples=n, groups=len(counts),
        candidate_only_correct=cand_only, baseline_only_correct=base_only)


def _most_common(values: Sequence[int], tie_break: Optional[np.ndarray] = None) -> int:
    """The most frequent value; ties go to the higher tie_break score, then the lower value."""
    counts = np.bincount(np.asarray(values, int))
    tied = np.flatnonzero(counts == counts.max())
    if tie_break is not None and len(tied) > 1:
        tied = tied[tie_break[tied] == tie_break[tied].max()]
    return int(tied[0])


@dataclasses.dataclass(frozen=True)
class GroupPredictions:
    """One row per group (sorted by name): its true label (the majority of its tiles' labels)
    and predicted class (aggregated from its tiles' scores)."""

    groups: List[str]
    labels: np.ndarray
    predictions: np.ndarray


def aggregate_groups(groups: Sequence[str], labels: Sequence[int], scores: np.ndarray,
                     aggregation: str = "mean") -> GroupPredictions:
    """Tile predictions to group predictions. "mean": the class of the highest mean score over
    the group's tiles; "majority": the most frequent top-1 class of its tiles (a tie goes to
    the higher mean score). A group's true label is its tiles' majority label (a tie: the
    lower class id)."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"group aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    scores = np.asarray(scores, float)
    labels = np.asarray(labels, int)
    names = sorted(set(str(g) for g in groups))
    members: Dict[str, List[int]] = {name: [] for name in names}
    for i, group in enumerate(groups):
        members[str(group)].append(i)
    group_labels, group_predictions = [], []
    for name in names:
        rows = members[name]
        mean = scores[rows].mean(axis=0)
        group_labels.append(_most_common(labels[rows]))
        if aggregation == "mean":
            group_predictions.append(int(np.argmax(mean)))
        else:
            group_predictions.append(_most_common(np.argmax(scores[rows], axis=1), mean))
    return GroupPredictions(names, np.asarray(group_labels, int),
                            np.asarray(group_predictions, int))


def confusion(labels: Sequence[int], predictions: Sequence[int], num_classes: int
              ) -> List[List[int]]:
    """Counts, rows the true class, columns the predicted one."""
    matrix = np.zeros((num_classes, num_classes), int)
    for label, predicted in zip(labels, predictions):
        matrix[label, predicted] += 1
    return matrix.tolist()


def recall_per_class(labels: Sequence[int], predictions: Sequence[int], num_classes: int
                     ) -> List[Optional[float]]:
    """Per class id: the share of its examples predicted as it (None without examples)."""
    labels, predictions = np.asarray(labels, int), np.asarray(predictions, int)
    recalls = []
    for class_id in range(num_classes):
        mine = labels == class_id
        recalls.append(float(np.mean(predictions[mine] == class_id)) if mine.any() else None)
    return recalls


def calibration(scores: np.ndarray, labels: Sequence[int], bins: int = CALIBRATION_BINS
                ) -> Tuple[Optional[float], List[Dict[str, float]]]:
    """Expected calibration error of the top-1 score over `bins` equal-width confidence bins
    (sum over bins of bin share x |accuracy - mean confidence|; a score of 1 falls in the last
    bin), and the non-empty bins (low, high, count, confidence, accuracy)."""
    scores = np.asarray(scores, float)
    labels = np.asarray(labels, int)
    if len(labels) == 0:
        return None, []
    confidence = scores.max(axis=1)
    correct = np.argmax(scores, axis=1) == labels
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    ece, reliability = 0.0, []
    for b in range(bins):
        mine = index == b
        if not mine.any():
            continue
        accuracy, mean_confidence = float(correct[mine].mean()), float(confidence[mine].mean())
        ece += mine.mean() * abs(accuracy - mean_confidence)
        reliability.append({"low": b / bins, "high": (b + 1) / bins, "count": int(mine.sum()),
                            "confidence": mean_confidence, "accuracy": accuracy})
    return float(ece), reliability
