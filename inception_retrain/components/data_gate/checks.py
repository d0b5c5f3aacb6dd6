"""Plain checks behind DataGate: class counts from statistics, anomalies, class balance, label
drift between spans, the bad-file fraction and class weights. No TFX here: each rule is a
function of counts, testable on its own."""
import dataclasses
from typing import Any, Dict, List, Optional, Tuple

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
    """Splits no example reached (too few images for every split, or every image quarantined):
    TFDV's statistics of an empty split have no features, and no model trains or evaluates."""
    classes = sorted(set().union(*counts_by_split.values())) if counts_by_split else []
    return [f"split {split!r} is empty: class(es) {', '.join(classes) or '(none)'} have no "
            "readable image in it; add images (the split by data.train_percent, "
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


# Split and leakage: from ImageExampleGen's index (path, label, group, site, sha256 per example).
MAX_LISTED = 10   # files or groups named per message


def _names(items: List[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def leakage(index: Dict[str, List[Dict[str, str]]]) -> Dict[str, Any]:
    """What leaks between splits: groups in more than one split ({group: {split: [paths]}}),
    identical files (by SHA-256) in more than one split and under more than one label
    ({sha256: [[split, label, path], ...]}), and copies within one class and split."""
    by_group: Dict[str, Dict[str, List[str]]] = {}
    by_hash: Dict[str, List[List[str]]] = {}
    for split, records in sorted(index.items()):
        for r in records:
            by_group.setdefault(r["group"], {}).setdefault(split, []).append(r["path"])
            if r.get("sha256"):
                by_hash.setdefault(r["sha256"], []).append([split, r["label"], r["path"]])
    groups = {g: {s: sorted(p) for s, p in sorted(splits.items())}
              for g, splits in sorted(by_group.items()) if len(splits) > 1}
    copies = {h: sorted(c) for h, c in sorted(by_hash.items()) if len(c) > 1}
    within: Dict[str, Dict[str, int]] = {}
    for entries in copies.values():
        seen: Dict[Tuple[str, str], int] = {}
        for split, label, _ in entries:
            seen[(split, label)] = seen.get((split, label), 0) + 1
        for (split, label), n in seen.items():
            if n > 1:
                within.setdefault(split, {})[label] = within.get(split, {}).get(label, 0) + n - 1
    return {"groups_in_several_splits": groups,
            "duplicates_across_splits": {h: c for h, c in copies.items()
                                         if len({e[0] for e in c}) > 1},
            "label_conflicts": {h: c for h, c in copies.items() if len({e[1] for e in c}) > 1},
            "duplicates_within_class": {s: dict(sorted(c.items()))
                                        for s, c in sorted(within.items())}}


def leakage_summary(leaks: Dict[str, Any], limit: int = 50) -> Dict[str, Any]:
    """leaks for the data facts and the report: each kind with its count and at most limit
    entries (the messages name the rest)."""
    out: Dict[str, Any] = {"duplicates_within_class": leaks["duplicates_within_class"]}
    for key in ("groups_in_several_splits", "duplicates_across_splits", "label_conflicts"):
        out[key] = dict(list(leaks[key].items())[:limit])
        out[key + "_count"] = len(leaks[key])
    return out


def leakage_problems(leaks: Dict[str, Any]) -> Tuple[List[str], List[str], List[str]]:
    """(group leakage, duplicates across splits, label conflicts): one message per group or
    content, naming the files."""
    groups = [f"group {group!r} is in {len(splits)} splits ("
              + "; ".join(f"{s}: {len(p)} image(s), {_names(p)}" for s, p in splits.items())
              + "): its images are near-copies of each other, so the model is evaluated on what "
              "it trained on (data.on_group_leakage)"
              for group, splits in leaks["groups_in_several_splits"].items()]
    duplicates = [f"identical files (sha256 {h[:12]}) in splits "
                  f"{', '.join(sorted({e[0] for e in c}))}: "
                  + _names([f"{e[0]}: {e[2]}" for e in c]) + " (data.on_duplicates)"
                  for h, c in leaks["duplicates_across_splits"].items()]
    conflicts = [f"identical files (sha256 {h[:12]}) under labels "
                 f"{', '.join(sorted({e[1] for e in c}))}: "
                 + _names([f"{e[2]} ({e[1]})" for e in c]) + " (data.on_label_conflict)"
                 for h, c in leaks["label_conflicts"].items()]
    return groups, duplicates, conflicts


def _distribution(values: List[int]) -> Dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    middle = len(ordered) // 2
    median = (ordered[middle] if len(ordered) % 2 else
              (ordered[middle - 1] + ordered[middle]) / 2)
    return {"min": ordered[0], "median": median, "mean": round(sum(ordered) / len(ordered), 2),
            "max": ordered[-1]}


def split_summary(index: Dict[str, List[Dict[str, str]]], grouped: bool) -> Dict[str, Any]:
    """The split as the report shows it: per split the images, groups, images per group
    (min, median, mean, max), sites, and how far its class balance is from the whole data's
    (L-infinity distance of the class shares, and the class where it peaks)."""
    totals: Dict[str, int] = {}
    for records in index.values():
        for r in records:
            totals[r["label"]] = totals.get(r["label"], 0) + 1
    splits = {}
    all_groups, all_sites = set(), {}
    for split, records in index.items():   # in the configured order (train, eval, test)
        per_group: Dict[str, int] = {}
        classes: Dict[str, int] = {}
        class_groups: Dict[str, set] = {}
        sites: Dict[str, int] = {}
        for r in records:
            per_group[r["group"]] = per_group.get(r["group"], 0) + 1
            classes[r["label"]] = classes.get(r["label"], 0) + 1
            class_groups.setdefault(r["label"], set()).add(r["group"])
            if r.get("site"):
                sites[r["site"]] = sites.get(r["site"], 0) + 1
                all_sites.setdefault(r["site"], set()).add(r["group"])
        all_groups.update(per_group)
        distance, worst = label_drift(classes, totals)
        splits[split] = {"images": len(records), "groups": len(per_group),
                         "images_per_group": _distribution(list(per_group.values())),
                         "sites": dict(sorted(sites.items())),
                         "class_balance_distance": round(distance, 4),
                         "class_balance_worst": worst,
                         "classes": {c: {"images": n, "groups": len(class_groups[c])}
                                     for c, n in sorted(classes.items())}}
    return {"grouped": grouped, "splits": splits, "groups": len(all_groups),
            "sites": {s: len(g) for s, g in sorted(all_sites.items())}}


def coverage_problems(split: Dict[str, Any], train_split: str = "train") -> List[str]:
    """A class without any image (or, with groups, any group) in a split: that split cannot
    say anything about the class (eval: the blessing; test: the held-out figure). Read from
    split_summary's images and groups per split and class; each message names the class, the
    split and the counts, and what to add."""
    grouped, splits = split["grouped"], split["splits"]
    unit, measure = ("slides", "groups") if grouped else ("images", "images")
    classes = sorted(set().union(*(s["classes"] for s in splits.values())))
    problems = []
    for name in classes:
        per_split = {s: v["classes"].get(name, {}).get(measure, 0) for s, v in splits.items()}
        # a class absent from training has its own failure (missing_classes)
        missing = [s for s in splits if not per_split[s] and s != train_split]
        if not missing:
            continue
        listing = ", ".join(f"{per_split[s]} {s}" for s in splits)
        problems.append(
            f"class {name} has 0 {' or '.join(missing)} {unit} ({sum(per_split.values())} "
            f"{unit} in all: {listing}); a class needs at least {len(splits)} {unit} to reach "
            f"every split ({', '.join(splits)}): add {unit} of {name} (data.on_split_coverage)")
    return problems


def evaluate(counts_by_split: Dict[str, Dict[str, int]], train_split: str, quarantined: int,
             anomalies: List[str], previous: Optional[Tuple[int, Dict[str, int]]],
             thresholds: GateThresholds,
             leaks: Optional[Dict[str, Any]] = None,
             coverage: Optional[List[str]] = None) -> Verdict:
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
    if leaks is not None:
        groups, duplicates, conflicts = leakage_problems(leaks)
        verdict.add(thresholds.on_group_leakage, groups)
        verdict.add(thresholds.on_duplicates, duplicates)
        verdict.add(thresholds.on_label_conflict, conflicts)
    if coverage:
        verdict.add(thresholds.on_split_coverage, coverage)
    return verdict


def total_counts(counts_by_split: Dict[str, Dict[str, int]]) -> Dict[str, int]:
    totals: Dict[str, int] = {}
    for counts in counts_by_split.values():
        for name, count in counts.items():
            totals[name] = totals.get(name, 0) + count
    return dict(sorted(totals.items()))
