"""Which split each group (a slide; an image when there is no group key) goes to: whole groups,
stratified by each group's majority class, deterministic, and stable through a ledger of earlier
assignments. Plain Python (no TensorFlow, no Beam): the executor calls it once per ingest.

Stability and stratification together need memory: a pure hash of the group keeps earlier groups
where they were, but leaves a class with few groups out of eval by chance (0.8^10 = 11 % for ten
slides at a 20 % share). So earlier groups keep the split the ledger gives them, and only new
groups are placed, one by one in the order of a hash of their name, where their stratum needs
them most. With an empty ledger the result depends on the data alone.
"""
import hashlib
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

METHOD = "whole groups, stratified by each group's majority class, earlier groups kept (ledger)"


def majority_class(label_counts: Mapping[str, int]) -> str:
    """The class most of a group's images carry; ties go to the class name first in order."""
    return min(label_counts, key=lambda label: (-label_counts[label], label))


def _order(group: str) -> str:
    return hashlib.sha256(group.encode("utf-8")).hexdigest()


def assign(groups: Mapping[str, Mapping[str, int]], shares: Sequence[Tuple[str, float]],
           ledger: Mapping[str, str]) -> Dict[str, str]:
    """{group: split} for every group of `groups` ({group: {label: images}}).

    shares: (split, weight) in the configured order, e.g. (("train", 70), ("eval", 20),
    ("test", 10)). ledger: {group: split} of earlier ingests; a group found there keeps its split
    (when that split still exists). Each new group, in hash order within its stratum, goes first
    to a split of nonzero share that has no group of the stratum yet (the largest such share
    first, so a stratum's first group trains), then to the split furthest below its share of
    the stratum's images.
    """
    weights = {name: float(weight) for name, weight in shares if weight > 0}
    total = sum(weights.values())
    fractions = {name: weight / total for name, weight in weights.items()}
    rank = {name: i for i, (name, _) in enumerate(shares)}
    by_stratum: Dict[str, List[str]] = {}
    for group, labels in groups.items():
        by_stratum.setdefault(majority_class(labels), []).append(group)
    result: Dict[str, str] = {}
    for stratum in sorted(by_stratum):
        members = by_stratum[stratum]
        images = {name: 0 for name in fractions}
        count = {name: 0 for name in fractions}
        new = []
        for group in members:
            split = ledger.get(group)
            if split in fractions:
                result[group] = split
                images[split] += sum(groups[group].values())
                count[split] += 1
            else:
                new.append(group)
        for group in sorted(new, key=_order):
            size = sum(groups[group].values())
            empty = [name for name in fractions if count[name] == 0]
            if empty:
                split = min(empty, key=lambda name: (-fractions[name], rank[name]))
            else:
                after = sum(images.values()) + size
                split = max(fractions, key=lambda name: (
                    fractions[name] * after - images[name], fractions[name], -rank[name]))
            result[group] = split
            images[split] += size
            count[split] += 1
    return result


def split_counts(groups: Mapping[str, Mapping[str, int]], assignment: Mapping[str, str],
                 splits: Iterable[str]) -> Dict[str, Dict[str, Dict[str, int]]]:
    """{split: {class: {"images": n, "groups": g}}}: a group counts for each class it holds."""
    out: Dict[str, Dict[str, Dict[str, int]]] = {name: {} for name in splits}
    for group, labels in groups.items():
        per_class = out.setdefault(assignment[group], {})
        for label, n in labels.items():
            entry = per_class.setdefault(label, {"images": 0, "groups": 0})
            entry["images"] += n
            entry["groups"] += 1
    return {split: dict(sorted(classes.items())) for split, classes in out.items()}
