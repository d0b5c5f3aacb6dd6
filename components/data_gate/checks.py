"""Plain checks behind DataGate: class counts from statistics, anomalies, class balance, label
drift between spans, the bad-file fraction and class weights. No TFX here: each rule is a
function of counts, testable on its own."""
import dataclasses
from typing import Dict, List, Optional, Tuple

from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from inception_retrain.components.data_gate.thresholds import GateThresholds


class DataValidationError(RuntimeError):
    """The data failed validation; the message names the split, feature or classes."""


@dataclasses.dataclass
class Verdict:
    """Failures stop the pipeline; warnings are recorded in the data facts and the report."""

    failures: List[str] = dataclasses.field(default_factory=list)
    warnings: List[str] = dataclasses.field(default_factory=list)

    def add(self, policy: str, problems: List[str]) -> None:
        (self.failures if policy == "fail" else self.warnings).extend(problems)


def _feature(stats: statistics_pb2.DatasetFeatureStatisticsList, name: str):
    for dataset in stats.datasets:
        for feature in dataset.features:
            if (feature.path.step and feature.path.step[-1] == name) or feature.name == name:
                return feature
    return None


def class_counts(stats: statistics_pb2.DatasetFeatureStatisticsList,
                 label_key: str) -> Dict[str, int]:
    """Examples per label value, from the label's rank histogram (every value, not top-k)."""
    feature = _feature(stats, label_key)
    if feature is None and all(d.num_examples == 0 for d in stats.datasets):
        return {}  # an empty split: TFDV lists no feature; empty_splits names it
    if feature is None:
        raise DataValidationError(f"statistics have no feature {label_key!r}")
    return {b.label: int(round(b.sample_count))
            for b in feature.string_stats.rank_histogram.buckets}


def numeric_summary(stats: statistics_pb2.DatasetFeatureStatisticsList,
                    name: str) -> Optional[Dict[str, float]]:
    """min, median, mean, max of a numeric feature (e.g. image width), or None if absent."""
    feature = _feature(stats, name)
    if feature is None or not feature.HasField("num_stats"):
        return None
    num = feature.num_stats
    return {"min": num.min, "median": num.median, "mean": round(num.mean, 1), "max": num.max}


def anomaly_messages(split: str, anomalies: anomalies_pb2.Anomalies) -> List[str]:
    """One line per anomalous feature: split, feature and TFDV's description."""
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = "; ".join(r.description or r.short_description for r in info.reason)
        lines.append(f"[{split}] feature {feature!r}: {info.short_description}. {reasons}")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"[{split}] dataset: {info.short_description}")
    return lines


def _listing(counts: Dict[str, int]) -> str:
    return ", ".join(f"{c}: {n}" for c, n in sorted(counts.items()))


def missing_classes(counts_by_split: Dict[str, Dict[str, int]], train_split: str) -> List[str]:
    """Classes seen in some split but absent from training: never trainable, whatever policy."""
    train = counts_by_split.get(train_split, {})
    classes = sorted(set().union(*counts_by_split.values())) if counts_by_split else []
    problems = []
    if len(classes) < 2:
        problems.append(f"found {len(classes)} class(es) ({classes}); need at least two")
    absent = [c for c in classes if train.get(c, 0) == 0]
    if absent:
        problems.append(f"class(es) {', '.join(absent)} have no example in split "
                        f"{train_split!r}; add images to those folders")
    return problems


def empty_splits(counts_by_split: Dict[str, Dict[str, int]]) -> List[str]:
    """Splits no example reached (the hash split of few images, or every image quarantined):
    TFDV's statistics of an empty split have no features, and no model trains or evaluates."""
    classes = sorted(set().union(*counts_by_split.values())) if counts_by_split else []
    return [f"split {split!r} is empty: class(es) {', '.join(classes) or '(none)'} have no "
            "readable image in it; add images (the hash split by data.train_percent, "
            "eval_percent and test_percent assigns few images unevenly) or check the "
            "quarantine list"
            for split, counts in sorted(counts_by_split.items()) if not sum(counts.values())]


def balance_problems(train: Dict[str, int], thresholds: GateThresholds,
                     train_split: str = "train") -> List[str]:
    """Too few examples of a class, too large a largest/smallest ratio, too small a class
    fraction; each message names the classes and their counts."""
    present = {c: n for c, n in train.items() if n > 0}
    if not present:
        return []
    problems = []
    too_few = {c: n for c, n in present.items() if n < thresholds.min_examples_per_class}
    if too_few:
        problems.append(
            f"split {train_split!r} has fewer than {thresholds.min_examples_per_class} examples "
            f"for class(es) {_listing(too_few)} (data.min_examples_per_class)")
    largest = max(present, key=lambda c: (present[c], c))
    smallest = min(present, key=lambda c: (present[c], c))
    ratio = present[largest] / present[smallest]
    if thresholds.max_class_ratio and ratio > thresholds.max_class_ratio:
        problems.append(
            f"class imbalance in split {train_split!r}: largest class {largest} has "
            f"{present[largest]} examples, smallest {smallest} has {present[smallest]} "
            f"(ratio {ratio:.1f}, above data.max_class_ratio={thresholds.max_class_ratio:g})")
    total = sum(present.values())
    rare = {c: n for c, n in present.items() if n / total < thresholds.min_class_fraction}
    if rare:
        problems.append(
            f"class(es) below data.min_class_fraction={thresholds.min_class_fraction:g} of "
            f"{total} examples in split {train_split!r}: " + ", ".join(
                f"{c}: {n} ({n / total:.1%})" for c, n in sorted(rare.items())))
    return problems


def label_drift(current: Dict[str, int], previous: Dict[str, int]) -> Tuple[float, str]:
    """L-infinity distance between two label distributions, and the class where it peaks."""
    current_total, previous_total = sum(current.values()), sum(previous.values())
    if not current_total or not previous_total:
        return 0.0, ""
    gaps = {c: abs(current.get(c, 0) / current_total - previous.get(c, 0) / previous_total)
            for c in set(current) | set(previous)}
    worst = max(sorted(gaps), key=lambda c: gaps[c])
    return gaps[worst], worst


def drift_problems(current: Dict[str, int], previous: Dict[str, int], previous_span: int,
                   thresholds: GateThresholds) -> List[str]:
    distance, worst = label_drift(current, previous)
    if not thresholds.max_label_drift or distance <= thresholds.max_label_drift:
        return []
    current_total, previous_total = sum(current.values()), sum(previous.values())
    return [f"label distribution drifted from span {previous_span}: L-infinity distance "
            f"{distance:.3f} above data.max_label_drift={thresholds.max_label_drift:g}, largest "
            f"for class {worst} ({previous.get(worst, 0) / previous_total:.1%} -> "
            f"{current.get(worst, 0) / current_total:.1%})"]


def quarantine_problems(quarantined: int, examples: int, thresholds: GateThresholds) -> List[str]:
    total = quarantined + examples
    fraction = quarantined / total if total else 0.0
    if fraction <= thresholds.max_quarantined_fraction:
        return []
    return [f"{quarantined} of {total} files ({fraction:.1%}) were quarantined, above "
            f"data.max_quarantined_fraction={thresholds.max_quarantined_fraction:.1%}; "
            "see the quarantine list in the data report"]


def class_weights(counts: Dict[str, int]) -> Dict[str, float]:
    """Inverse-frequency weights, mean 1 over examples: total / (classes * count)."""
    present = {c: n for c, n in counts.items() if n > 0}
    total = sum(present.values())
    return {c: total / (len(present) * n) for c, n in sorted(present.items())}


def evaluate(counts_by_split: Dict[str, Dict[str, int]], train_split: str, quarantined: int,
             anomalies: List[str], previous: Optional[Tuple[int, Dict[str, int]]],
             thresholds: GateThresholds) -> Verdict:
    """Every rule at once, so the report can show all problems, not just the first."""
    verdict = Verdict(failures=empty_splits(counts_by_split) + list(anomalies)
                      + missing_classes(counts_by_split, train_split))
    verdict.failures += quarantine_problems(
        quarantined, sum(sum(c.values()) for c in counts_by_split.values()), thresholds)
    verdict.add(thresholds.on_imbalance, balance_problems(
        counts_by_split.get(train_split, {}), thresholds, train_split))
    if previous is not None:
        span, previous_counts = previous
        verdict.add(thresholds.on_drift, drift_problems(
            total_counts(counts_by_split), previous_counts, span, thresholds))
    return verdict


def total_counts(counts_by_split: Dict[str, Dict[str, int]]) -> Dict[str, int]:
    totals: Dict[str, int] = {}
    for counts in counts_by_split.values():
        for name, count in counts.items():
            totals[name] = totals.get(name, 0) + count
    return dict(sorted(totals.items()))
