"""Plain checks behind DataGate: class counts from statistics, anomalies, balance, weights."""
import dataclasses
from typing import Dict, List

from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2


class DataValidationError(RuntimeError):
    """The data failed validation; the message names the split, feature or classes."""


@dataclasses.dataclass(frozen=True)
class GateThresholds:
    min_examples_per_class: int = 2
    max_quarantined_fraction: float = 0.05


def class_counts(stats: statistics_pb2.DatasetFeatureStatisticsList,
                 label_key: str) -> Dict[str, int]:
    """Examples per label value, from the label's rank histogram (every value, not top-k)."""
    for dataset in stats.datasets:
        for feature in dataset.features:
            if feature.path.step and feature.path.step[-1] == label_key or feature.name == label_key:
                buckets = feature.string_stats.rank_histogram.buckets
                return {b.label: int(round(b.sample_count)) for b in buckets}
    raise DataValidationError(f"statistics have no feature {label_key!r}")


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


def check_class_counts(counts_by_split: Dict[str, Dict[str, int]], train_split: str,
                       thresholds: GateThresholds) -> None:
    """Raises when the training split misses a class or has too few examples of one."""
    train = counts_by_split.get(train_split, {})
    classes = sorted(set().union(*counts_by_split.values()))
    if len(classes) < 2:
        raise DataValidationError(f"found {len(classes)} class(es) ({classes}); need at least two")
    too_few = {c: train.get(c, 0) for c in classes
               if train.get(c, 0) < thresholds.min_examples_per_class}
    if too_few:
        listing = ", ".join(f"{c}: {n}" for c, n in sorted(too_few.items()))
        raise DataValidationError(
            f"split {train_split!r} has fewer than {thresholds.min_examples_per_class} examples "
            f"for class(es) {listing}. Add images to those folders or lower "
            "min_examples_per_class.")


def check_quarantine(quarantined: int, examples: int, thresholds: GateThresholds) -> None:
    total = quarantined + examples
    fraction = quarantined / total if total else 0.0
    if fraction > thresholds.max_quarantined_fraction:
        raise DataValidationError(
            f"{quarantined} of {total} files ({fraction:.1%}) were quarantined, above "
            f"max_quarantined_fraction={thresholds.max_quarantined_fraction:.1%}; "
            "see the quarantine list in the ImageExampleGen output")


def class_weights(counts: Dict[str, int]) -> Dict[str, float]:
    """Inverse-frequency weights, mean 1 over examples: total / (classes * count)."""
    total = sum(counts.values())
    return {c: total / (len(counts) * n) for c, n in sorted(counts.items()) if n > 0}
