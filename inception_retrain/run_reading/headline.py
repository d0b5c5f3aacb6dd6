"""The numbers a report leads with, read from an evaluation: the candidate's accuracy with its
95% interval and count, the served model's on the same images, the paired difference and the
rule that decided. From the Evaluator's evidence record when it has one (the paired test on
the same images), else from TFMA's metrics (a Wilson interval on the example count)."""
import dataclasses
from typing import Optional, Sequence, Tuple

from inception_retrain.components.evaluator import evidence as evidence_lib
from inception_retrain.run_reading.evaluation import ACCURACY, COUNT
from inception_retrain.run_reading.record import EvaluationSection, Headline

BASELINE = " [baseline]"  # TFMA's baseline model's metrics, as run_reading.evaluation names them
WILSON = "95 % Wilson score"


def _pair(values: Optional[Sequence[Optional[float]]]) -> Optional[Tuple[float, float]]:
    if not values or values[0] is None or values[1] is None:
        return None
    return float(values[0]), float(values[1])


def _wilson(accuracy: Optional[float], examples: Optional[int]) -> Optional[Tuple[float, float]]:
    if accuracy is None or not examples:
        return None
    return _pair(evidence_lib.wilson_interval(round(accuracy * examples), examples))


def _finite(value) -> Optional[float]:
    return None if value is None or value != value else float(value)


def decisive_rule(evaluation: EvaluationSection) -> str:
    """Not blessed: the first failed rule (and how many more); blessed: the paired
    no-regression rule it met, or that every threshold was met."""
    if not evaluation.blessed:
        if not evaluation.failures:
            return "a threshold failed"
        more = len(evaluation.failures) - 1
        return evaluation.failures[0] + (f" (and {more} more)" if more else "")
    rule = (evaluation.evidence or {}).get("rule") or {}
    if rule.get("applied", True) and rule.get("text"):
        return f"no-regression rule ({rule.get('regression_rule')}): {rule['text']}"
    checks = len(evaluation.checks)
    return f"every threshold met ({checks} checks)" if checks else "every threshold met"


def of(evaluation: EvaluationSection) -> Headline:
    """The evaluation's headline numbers."""
    record = evaluation.evidence or {}
    candidate = record.get("candidate") or {}
    comparison = (record.get("comparison") or {}).get("overall") or {}
    if candidate.get("accuracy") is not None and record.get("examples"):
        accuracy, examples = float(candidate["accuracy"]), int(record["examples"])
        interval = _pair(candidate.get("accuracy_interval"))
        method = candidate.get("accuracy_interval_method") or WILSON
    else:
        accuracy = _finite(evaluation.metrics.get(ACCURACY))
        count = _finite(evaluation.metrics.get(COUNT))
        examples = int(count) if count else None
        interval, method = _wilson(accuracy, examples), WILSON
    baseline = (_finite(comparison.get("baseline")) if comparison
                else _finite(evaluation.metrics.get(ACCURACY + BASELINE)))
    return Headline(
        accuracy=accuracy, examples=examples, interval=interval,
        interval_method=method if interval else "",
        baseline_accuracy=baseline, baseline_interval=_wilson(baseline, examples),
        difference=_finite(comparison.get("difference")),
        difference_interval=_pair(comparison.get("interval")),
        difference_verdict=str(comparison.get("verdict") or ""),
        decisive_rule=decisive_rule(evaluation))


def with_headline(evaluation: Optional[EvaluationSection]) -> Optional[EvaluationSection]:
    """evaluation with its headline filled in (None stays None)."""
    if evaluation is None:
        return None
    return dataclasses.replace(evaluation, headline=of(evaluation))
