"""The end-of-run summary a person reads on the console, rendered from a RunRecord
(run_reading.reader reads it from the metadata store, so the same summary can be produced later
for any past run)."""
from typing import Dict, List, Optional

from inception_retrain.run_reading.record import (
    DataSection,
    EvaluationSection,
    RunRecord,
    TrainingSection,
)
from inception_retrain.run_rendering import answer, compare, evidence_view
from inception_retrain.run_rendering.answer import baseline_text

NAN = float("nan")


def _metric_lines(metrics: Dict[str, float]) -> List[str]:
    """One line per metric of the candidate; counts (example_count) as whole numbers, the rest
    to 4 places. The baseline's values are left to the paired comparison (evidence_view),
    which says how sure each difference is."""
    return [f"  {k}: {v:.0f}" if k.endswith("_count") else f"  {k}: {v:.4f}"
            for k, v in sorted(metrics.items()) if "baseline" not in k]


def _per_class_lines(per_class: Dict[str, Dict[str, float]]) -> List[str]:
    """A class x (precision, recall, calibration) table; precision and recall of the top-1
    class (components.evaluator.metrics)."""
    if not per_class:
        return []
    columns = {"precision": "top1_precision", "recall": "top1_recall",
               "calibration": "calibration"}
    lines = ["  " + f"{'class':<24}" + "".join(f"{c:>12}" for c in columns)]
    for name in sorted(per_class):
        values = per_class[name]
        lines.append("  " + f"{name:<24}" + "".join(
            f"{values.get(metric, NAN):>12.4f}" for metric in columns.values()))
    return lines


def _comparison_lines(evaluation: EvaluationSection, support: Dict[str, int]) -> List[str]:
    """Per class, the candidate against the served model on the same eval images: precision
    and recall of both, the recall difference and the per-class recall rule (the report's
    "Candidate against the served model" table)."""
    checks = compare.recall_drop_checks(evaluation)
    header = (f"  {'class':<24}{'examples':>9}{'precision':>11}{'served':>8}{'recall':>8}"
              f"{'served':>8}{'change':>8}" + ("  recall rule" if checks else ""))
    lines = ["Candidate against the served model, per class (eval split):", header]

    def cell(value, width, signed=False):
        return f"{'–':>{width}}" if value is None else (
            f"{value:>+{width}.4f}" if signed else f"{value:>{width}.4f}")

    for row in compare.rows(evaluation, sorted(evaluation.per_class)):
        precision, recall = row["precision"], row["recall"]
        check = checks.get(row["class"])
        lines.append(
            f"  {row['class']:<24}{support.get(row['class'], 0):>9}"
            + cell(precision["candidate"], 11) + cell(precision["baseline"], 8)
            + cell(recall["candidate"], 8) + cell(recall["baseline"], 8)
            + cell(recall["change"], 8, True)
            + (("  " + ("passed" if check["passed"] else "FAILED") if check else "  –")
               if checks else ""))
    return lines


def _data_lines(data: Optional[DataSection]) -> List[str]:
    if data is None:
        return []
    out = []
    if data.class_counts:
        out.append("Examples per split and class:")
        out.append("  " + f"{'class':<24}" + "".join(f"{s:>8}" for s in data.splits))
        for name in data.classes:
            out.append("  " + f"{name:<24}" + "".join(
                f"{data.count(s, name):>8}" for s in data.splits))
        out.append("  " + f"{'total':<24}" + "".join(
            f"{data.split_total(s):>8}" for s in data.splits))
    if data.quarantine is not None:
        out.append(f"Quarantined files: {len(data.quarantine)}")
        out.extend(f"  {q['relative_path']}: {q['reason']}" for q in data.quarantine[:20])
    out.extend(f"Data warning: {warning}" for warning in data.warnings or [])
    if data.report_path:
        out.append(f"Data report: {data.report_path}")
    if data.anomalies is not None:
        out.append("Anomalies: " + ("none" if not data.anomalies else ""))
        out.extend(f"  {line}" for line in data.anomalies)
    return out


def _training_lines(training: Optional[TrainingSection]) -> List[str]:
    if training is None:
        return []
    if training.base_weights_random:
        out = ["!" * 72, f"!! BASE WEIGHTS: {training.base_weights}", "!" * 72]
    else:
        out = [f"Base weights: {training.base_weights}"]
    if training.strategy:  # hardware, and the precision that ran and why (trainer report)
        out.append(f"Hardware: {training.strategy}")
    for phase in training.phases:
        if phase.skipped is not None:
            out.append(f"Training {phase.name}: skipped ({phase.skipped})")
            continue
        last, best = phase.last, phase.best_val_loss
        out.append(
            f"Training {phase.name}: {phase.epochs_run} epoch(s) in {phase.seconds} s"
            f"; last accuracy {last.get('accuracy', NAN):.3f}, val_accuracy "
            f"{last.get('val_accuracy', NAN):.3f}; best val_loss "
            f"{NAN if best is None else best:.4f}")
    return out


def render(record: RunRecord, seconds: Optional[float] = None) -> str:
    """The summary as text a person reads at the end of a run."""
    out = ["", "=" * 72, f"Run summary: {record.pipeline}"
           + (f" ({seconds:.0f} s)" if seconds else ""), "=" * 72]
    out.append("Components:")
    for c in record.components:
        state = "INTERRUPTED" if c.interrupted else c.state
        out.append(f"  {c.component:<32} {state:<9} {c.seconds:>7.1f} s")
    for c in record.components:
        if c.state == "FAILED":
            out.append(f"FAILED: {c.component}: {c.error or 'no error recorded (see the log)'}")
    out.extend(f"Note: {a.sentence}" for a in record.active)
    out += _data_lines(record.data) + _training_lines(record.training)

    evaluation = record.evaluation
    if evaluation:
        baseline = evaluation.baseline or {}
        if baseline:
            out.append(f"Baseline: {baseline_text(baseline)}")
        if baseline.get("dropped"):
            out.append(f"  not used: {baseline['dropped']}")
        out.append("Evaluation (eval split):")
        out.extend(f"  {line}" for line in answer.numbers(evaluation))
        out.extend(_metric_lines(evaluation.metrics))
        if compare.has_baseline(evaluation):
            support = ((record.data.class_counts if record.data else None) or {}).get("eval", {})
            out.extend(_comparison_lines(evaluation, support))
        else:
            out.extend(_per_class_lines(evaluation.per_class))
        out.extend(evidence_view.console_lines(evaluation.evidence, evaluation.class_names))
        if evaluation.blessed:
            out.append("Blessed: yes (all thresholds met)")
        else:
            out.append("Blessed: NO")
            out.extend(f"  {reason}" for reason in evaluation.failures)
    test_split = record.test_split
    if test_split:
        if test_split.skipped:
            out.append(f"Test split: not evaluated ({test_split.skipped})")
        else:
            out.append("Test split (blessed candidate; recorded, never used for gating):")
            out.extend(_metric_lines(test_split.metrics))
            out.extend(_per_class_lines(test_split.per_class))
            out.extend(evidence_view.candidate_lines(test_split.evidence))
    push = record.push
    if push:
        if push.pushed and push.already_served:
            out.append(f"Pushed: already served as version {push.version} ({push.destination});"
                       " nothing copied")
        elif push.pushed:
            out.append(f"Pushed: {push.destination} (version {push.version})")
            if push.pruned_versions:
                out.append(f"  removed old versions: {push.pruned_versions}")
        else:
            out.append("Pushed: no (the served model is unchanged)")
    elif evaluation is None or record.training is None:
        out.append("The run stopped before evaluation; nothing was pushed.")
    else:
        out.append("Pushed: no (the run ended before the Pusher finished; the served model is "
                   "unchanged)")
    out.append("=" * 72)
    return "\n".join(out)
