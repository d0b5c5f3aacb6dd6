"""The Evaluator's evidence rules and its evidence record (the contract in
components/evaluator/evidence_contract.py), from per-example predictions: enough examples (and
slides) per class, the paired comparison with the baseline, the no-regression rule on that same
statistic, the group-level floor, and the final blessing. Plain Python and numpy."""
import dataclasses
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from inception_retrain.components.evaluator import evidence
from inception_retrain.components.evaluator.evidence_contract import (
    AGGREGATIONS,
    REGRESSION_RULES,
)

TOLERANCE = 1e-9   # accuracy differences are ratios of counts: -1/50 must pass ">= -0.02"


@dataclasses.dataclass(frozen=True)
class EvidenceSettings:
    """The evaluation.* keys the rules read (pipeline.config.EvaluationConfig documents them)."""

    min_examples_per_class: int = 10
    min_groups_per_class: int = 3
    significance_level: float = 0.05
    regression_rule: str = "point"
    max_accuracy_drop: float = 0.0
    group_aggregation: str = "mean"
    min_group_accuracy: float = 0.0

    def __post_init__(self):
        if self.regression_rule not in REGRESSION_RULES:
            raise ValueError(f"regression_rule must be one of {REGRESSION_RULES}, "
                             f"got {self.regression_rule!r}")
        if self.group_aggregation not in AGGREGATIONS:
            raise ValueError(f"group_aggregation must be one of {AGGREGATIONS}, "
                             f"got {self.group_aggregation!r}")


@dataclasses.dataclass(frozen=True)
class Predictions:
    """Per example of a split: path, label id (-1: a class the model does not know), group,
    and the scores of the candidate and (optionally) the baseline, in class-name order."""

    paths: List[str]
    labels: np.ndarray
    groups: List[str]
    candidate: np.ndarray
    baseline: Optional[np.ndarray] = None

    @classmethod
    def from_rows(cls, rows: Sequence[Dict[str, Any]], class_names: Sequence[str]
                  ) -> "Predictions":
        """From predictions.jsonl rows (evidence_contract.read_predictions)."""
        index = {name: i for i, name in enumerate(class_names)}
        width = len(class_names)
        has_baseline = bool(rows) and all(row.get("baseline") is not None for row in rows)
        return cls(
            paths=[row["path"] for row in rows],
            labels=np.asarray([index.get(row["label"], -1) for row in rows], int),
            groups=[row.get("group") or row["path"] for row in rows],
            candidate=np.asarray([row["candidate"] for row in rows], float).reshape(-1, width),
            baseline=(np.asarray([row["baseline"] for row in rows], float).reshape(-1, width)
                      if has_baseline else None))


def _interval(interval) -> List[Optional[float]]:
    return [interval[0], interval[1]]


def evidence_counts(class_names: Sequence[str], predictions: Predictions, grouped: bool,
                    split: str, settings: EvidenceSettings) -> Dict[str, Any]:
    """Examples (and groups) per class, and one sentence per class below a minimum."""
    per_class, problems = {}, []
    for class_id, name in enumerate(class_names):
        mine = predictions.labels == class_id
        examples = int(mine.sum())
        groups = (len({g for g, m in zip(predictions.groups, mine) if m}) if grouped else None)
        per_class[name] = {"examples": examples, "groups": groups}
        if examples < settings.min_examples_per_class:
            problems.append(f"not enough evidence: class {name} has {examples} {split} images "
                            f"(minimum {settings.min_examples_per_class})")
        if grouped and groups < settings.min_groups_per_class:
            problems.append(f"not enough evidence: class {name} has {groups} {split} slides "
                            f"(minimum {settings.min_groups_per_class})")
    return {"per_class": per_class, "evidence": {
        "min_examples_per_class": settings.min_examples_per_class,
        "min_groups_per_class": settings.min_groups_per_class,
        "enough": not problems, "problems": problems}}


def candidate_section(class_names: Sequence[str], predictions: Predictions, grouped: bool,
                      settings: EvidenceSettings) -> Dict[str, Any]:
    """The candidate alone: accuracy with its interval (Wilson over images, or the group
    bootstrap), calibration, and the group-level results when grouped."""
    level = settings.significance_level
    correct = np.argmax(predictions.candidate, axis=1) == predictions.labels
    n = len(correct)
    if grouped:
        interval = evidence.bootstrap_accuracy(correct, predictions.groups, level)
        method = (f"percentile interval of a bootstrap over {len(set(predictions.groups))} "
                  f"slides ({evidence.BOOTSTRAP_RESAMPLES} resamples)")
    else:
        interval = evidence.wilson_interval(int(correct.sum()), n, level)
        method = f"Wilson interval over {n} images"
    ece, reliability = evidence.calibration(predictions.candidate, predictions.labels)
    return {"accuracy": float(correct.mean()) if n else None,
            "accuracy_interval": _interval(interval),
            "accuracy_interval_method": f"{100 * (1 - level):g} % {method}",
            "ece": ece, "reliability": reliability,
            "group_level": group_level(class_names, predictions, settings) if grouped else None}


def group_level(class_names: Sequence[str], predictions: Predictions,
                settings: EvidenceSettings) -> Dict[str, Any]:
    """Tile predictions aggregated per group: accuracy (Wilson over groups), recall per class,
    confusion matrix."""
    known = predictions.labels >= 0
    grouped = evidence.aggregate_groups([g for g, k in zip(predictions.groups, known) if k],
                                        predictions.labels[known],
                                        predictions.candidate[known], settings.group_aggregation)
    correct = grouped.labels == grouped.predictions
    recalls = evidence.recall_per_class(grouped.labels, grouped.predictions, len(class_names))
    return {"aggregation": settings.group_aggregation, "groups": len(grouped.groups),
            "accuracy": float(correct.mean()) if len(correct) else None,
            "accuracy_interval": _interval(evidence.wilson_interval(
                int(correct.sum()), len(correct), settings.significance_level)),
            "per_class_recall": dict(zip(class_names, recalls)),
            "confusion": {"labels": list(class_names), "matrix": evidence.confusion(
                grouped.labels, grouped.predictions, len(class_names))}}


def verdict(result: evidence.PairedResult) -> str:
    """"better" or "worse" only when the paired test calls the difference significant."""
    if not result.significant or not result.difference:
        return "no significant change"
    return "better" if result.difference > 0 else "worse"


def _paired_row(result: evidence.PairedResult) -> Dict[str, Any]:
    row = {field.name: getattr(result, field.name) for field in dataclasses.fields(result)
           if field.name != "significant"}
    row["interval"] = _interval(result.interval)
    row["verdict"] = verdict(result)
    return row


def compare(cand_correct: np.ndarray, base_correct: np.ndarray, groups: Sequence[str],
            grouped: bool, level: float) -> evidence.PairedResult:
    """The one paired statistic: group bootstrap when grouped, else exact McNemar."""
    if grouped:
        return evidence.bootstrap_comparison(cand_correct, base_correct, groups, level)
    return evidence.mcnemar_comparison(cand_correct, base_correct, level)


def comparison_section(class_names: Sequence[str], predictions: Predictions, grouped: bool,
                       split: str, baseline_name: str, level: float
                       ) -> Dict[str, Any]:
    """Candidate against baseline on the same examples, overall and per class (the recall
    difference), and every example whose top-1 prediction changed."""
    cand = np.argmax(predictions.candidate, axis=1)
    base = np.argmax(predictions.baseline, axis=1)
    cand_correct, base_correct = cand == predictions.labels, base == predictions.labels
    groups = np.asarray(predictions.groups, dtype=object)
    overall = compare(cand_correct, base_correct, predictions.groups, grouped, level)
    if grouped:
        method = (f"paired bootstrap over {overall.groups} slides "
                  f"({evidence.BOOTSTRAP_RESAMPLES} resamples, percentile interval)")
    else:
        method = (f"exact McNemar test on the {overall.examples} paired {split} images "
                  "(interval: Newcombe's method for paired proportions)")
    per_class = {}
    for class_id, name in enumerate(class_names):
        mine = predictions.labels == class_id
        per_class[name] = _paired_row(compare(cand_correct[mine], base_correct[mine],
                                              list(groups[mine]), grouped, level))
    changed = [{"path": predictions.paths[i], "label": _name(predictions.labels[i], class_names),
                "group": predictions.groups[i], "candidate": class_names[cand[i]],
                "baseline": class_names[base[i]]} for i in np.flatnonzero(cand != base)]
    return {"baseline": baseline_name, "level": level, "method": method,
            "overall": _paired_row(overall), "per_class": per_class, "changed": changed}


def _name(label: int, class_names: Sequence[str]) -> str:
    return class_names[label] if label >= 0 else "(unknown to the model)"


def regression_rule(comparison: Optional[Dict[str, Any]], settings: EvidenceSettings
                    ) -> Dict[str, Any]:
    """No regression, on the paired statistic: `point` (the difference >= -max_accuracy_drop)
    or `bound` (the interval's lower bound >= -max_accuracy_drop)."""
    rule, drop = settings.regression_rule, settings.max_accuracy_drop
    record = {"regression_rule": rule, "max_accuracy_drop": drop}
    if comparison is None:
        return dict(record, passed=True, applied=False,
                    text="no baseline to compare with: the no-regression rule did not apply")
    overall = comparison["overall"]
    if rule == "point":
        value, what = overall["difference"], "(point estimate)"
    else:
        value = overall["interval"][0]
        what = (f"(lower bound of the {100 * (1 - comparison['level']):g} % interval, "
                f"{comparison['method']})")
    if value is None:
        return dict(record, passed=False, applied=True,
                    text="no paired examples: the accuracy difference is unknown")
    passed = value >= -drop - TOLERANCE
    return dict(record, passed=passed, applied=True,
                text=f"accuracy difference {value:+.3f} {what} {'>=' if passed else '<'} "
                     f"{-drop:+.3f}")


def group_floor(candidate: Dict[str, Any], settings: EvidenceSettings
                ) -> Optional[Dict[str, Any]]:
    """The optional group-level accuracy floor (None when off)."""
    if settings.min_group_accuracy <= 0:
        return None
    group = candidate.get("group_level")
    floor = settings.min_group_accuracy
    if group is None:
        return {"floor": floor, "value": None, "passed": True,
                "text": "the data has no groups (slides): the group-level floor did not apply"}
    value = group["accuracy"]
    passed = value is not None and value >= floor - TOLERANCE
    return {"floor": floor, "value": value, "passed": passed,
            "text": f"group-level accuracy {_fmt(value)} {'>=' if passed else '<'} {floor:.3f}"}


def _fmt(value: Optional[float]) -> str:
    return "unknown" if value is None else f"{value:.3f}"


def build_record(class_names: Sequence[str], predictions: Predictions, grouped: bool,
                 split: str, settings: EvidenceSettings, baseline_name: str = "",
                 gating: bool = True) -> Dict[str, Any]:
    """The evidence record without the final verdict (decide adds it). gating=False (the test
    split): no comparison and no rule, blessed null."""
    counts = evidence_counts(class_names, predictions, grouped, split, settings)
    record: Dict[str, Any] = {
        "split": split, "class_names": list(class_names), "examples": len(predictions.paths),
        "grouped": grouped, "groups": len(set(predictions.groups)) if grouped else None,
        "per_class": counts["per_class"], "evidence": counts["evidence"],
        # labels the model has no class for (counted wrong for both models)
        "unknown_label_examples": int(np.sum(predictions.labels < 0)),
        "candidate": candidate_section(class_names, predictions, grouped, settings)}
    comparison = None
    if gating and predictions.baseline is not None:
        comparison = comparison_section(class_names, predictions, grouped, split,
                                        baseline_name or "baseline",
                                        settings.significance_level)
    record["comparison"] = comparison
    record["rule"] = regression_rule(comparison, settings) if gating else None
    record["min_group_accuracy"] = group_floor(record["candidate"], settings) if gating else None
    record["blessed"] = None
    record["reasons"] = []
    return record


def decide(record: Dict[str, Any], tfma_blessed: bool, tfma_reasons: Sequence[str]
           ) -> Dict[str, Any]:
    """The final blessing: TFMA blessed AND enough evidence AND no regression AND the
    group-level floor. Returns the record with blessed and every reason against it."""
    reasons = [] if tfma_blessed else list(tfma_reasons) or ["TFMA's thresholds failed"]
    reasons += record["evidence"]["problems"]
    if not record["rule"]["passed"]:
        reasons.append(f"no-regression rule ({record['rule']['regression_rule']}) failed: "
                       f"{record['rule']['text']}")
    floor = record["min_group_accuracy"]
    if floor is not None and not floor["passed"]:
        reasons.append(f"group-level accuracy floor failed: {floor['text']}")
    return dict(record, blessed=not reasons, reasons=reasons)
