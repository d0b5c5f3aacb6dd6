"""The candidate against the served model, side by side: per-class precision and recall of
both on the same eval split (TFMA evaluates the baseline beside the candidate: metric keys with
model_name "baseline", and the change "vs baseline"), with the difference, both confusion
matrices, and the per-class no-regression rule (evaluation.max_class_recall_drop) per class.
Rendered from the run's EvaluationSection only."""
import html
from typing import Any, Dict, List, Optional, Sequence

from inception_retrain.components import artifact_files
from inception_retrain.run_reading.record import EvaluationSection
from inception_retrain.run_rendering import charts, evidence_view
from inception_retrain.run_rendering.answer import baseline_text

BASELINE = " [baseline]"
CHANGE = " (change vs baseline)"
COLUMNS = (("precision", "top1_precision"), ("recall", "top1_recall"))


def has_baseline(evaluation: Optional[EvaluationSection]) -> bool:
    return bool(evaluation and any(name.endswith(BASELINE) for name in evaluation.metrics))


def rows(evaluation: EvaluationSection, order: Sequence[str]) -> List[Dict[str, Any]]:
    """Per class (in order): candidate, baseline and their difference for precision and
    recall; the difference is TFMA's own when it computed one, else candidate - baseline."""
    out = []
    for name in order:
        values = evaluation.per_class.get(name, {})
        row: Dict[str, Any] = {"class": name}
        for label, key in COLUMNS:
            candidate = artifact_files.json_safe(values.get(key))
            baseline = artifact_files.json_safe(values.get(key + BASELINE))
            change = artifact_files.json_safe(values.get(key + CHANGE))
            if change is None and candidate is not None and baseline is not None:
                change = candidate - baseline
            row[label] = {"candidate": candidate, "baseline": baseline, "change": change}
        out.append(row)
    return out


def recall_drop_checks(evaluation: EvaluationSection) -> Dict[str, Dict[str, Any]]:
    """{class: gate check} of the per-class recall change threshold, when the gate has it."""
    return {c["class"]: c for c in evaluation.checks
            if c["metric"] == "top1_recall" and c["kind"] == "change" and c["class"]}


def to_json(evaluation: Optional[EvaluationSection], order: Sequence[str]) -> Optional[Dict]:
    if not has_baseline(evaluation):
        return None
    overall = {name[:-len(BASELINE)]: {"candidate": evaluation.metrics.get(name[:-len(BASELINE)]),
                                        "baseline": value}
               for name, value in evaluation.metrics.items() if name.endswith(BASELINE)}
    return {"baseline": evaluation.baseline, "overall": overall,
            "per_class": rows(evaluation, order),
            "confusion_matrix": {"candidate": evaluation.confusion_matrix,
                                 "baseline": evaluation.baseline_confusion_matrix}}


def _num(value: Optional[float], signed: bool = False) -> str:
    """A number cell; differences are not coloured: only the paired test above the tables
    (evidence_view) calls a change better or worse."""
    if value is None:
        return '<td class="num na">–</td>'
    text = f"{value:+.4f}" if signed else f"{value:.4f}"
    return f'<td class="num">{text}</td>'


def comparison_html(evaluation: Optional[EvaluationSection], order: Sequence[str],
                    support: Dict[str, int], reorder=None) -> str:
    """The report's "Candidate against the served model" section ("" without an
    evaluation); says why there is no comparison when there was no baseline."""
    e = html.escape
    if evaluation is None:
        return ""
    out = ['<h2 id="compare">Candidate against the served model</h2>']
    baseline = evaluation.baseline or {}
    if not has_baseline(evaluation):
        why = (baseline.get("dropped") or baseline.get("note")
               or "no baseline model was evaluated")
        return out[0] + f"<p>No side-by-side comparison: {e(why)}.</p>"
    out.append(evidence_view.comparison_html(evaluation.evidence, order))
    out.append(f"<h3>TFMA's metrics, side by side</h3><p>Both models on the same eval split: the "
               f"candidate and {e(baseline_text(baseline))}. Difference = candidate − baseline; "
               "precision and recall of the top-1 class. These differences are not tested: the "
               "paired comparison above says which changes are significant.</p>")
    overall = []
    names = ["sparse_categorical_accuracy", "sparse_categorical_crossentropy"]
    if not (evaluation.top_k and order and evaluation.top_k >= len(order)):
        names.insert(1, "sparse_top_k_categorical_accuracy")  # else 1 by definition
    for name in names:
        candidate = artifact_files.json_safe(evaluation.metrics.get(name))
        base = artifact_files.json_safe(evaluation.metrics.get(name + BASELINE))
        if candidate is None and base is None:
            continue
        change = artifact_files.json_safe(evaluation.metrics.get(name + CHANGE))
        if change is None and candidate is not None and base is not None:
            change = candidate - base
        overall.append(f"<tr><td>{e(name)}</td>{_num(candidate)}{_num(base)}"
                       f"{_num(change, True)}</tr>")
    out.append('<table class="compare"><thead><tr><th>metric</th><th>candidate</th>'
               "<th>baseline</th><th>difference</th></tr></thead><tbody>" + "".join(overall)
               + "</tbody></table>")
    checks = recall_drop_checks(evaluation)
    head = ("<tr><th rowspan=\"2\">class</th><th rowspan=\"2\">examples</th>"
            "<th colspan=\"3\">precision</th><th colspan=\"3\">recall</th>"
            + ("<th rowspan=\"2\">recall rule</th>" if checks else "") + "</tr><tr>"
            + "<th>candidate</th><th>baseline</th><th>difference</th>" * 2 + "</tr>")
    body = []
    for row in rows(evaluation, order):
        cells = [f"<td>{e(row['class'])}</td>",
                 f'<td class="num">{support.get(row["class"], 0)}</td>']
        for label, _ in COLUMNS:
            values = row[label]
            cells += [_num(values["candidate"]), _num(values["baseline"]),
                      _num(values["change"], True)]
        if checks:
            check = checks.get(row["class"])
            cells.append("<td class=\"na\">–</td>" if check is None else
                         f'<td class="{"pass" if check["passed"] else "fail"}">'
                         f'{e(check["condition"])}: '
                         f'{"passed" if check["passed"] else "FAILED"}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    out.append(f'<h3>Per class</h3><table class="compare per-class"><thead>{head}</thead>'
               f"<tbody>{''.join(body)}</tbody></table>")
    matrices = []
    for title, matrix in (("candidate", evaluation.confusion_matrix),
                          ("baseline (served)", evaluation.baseline_confusion_matrix)):
        if matrix:
            matrix = reorder(matrix) if reorder else matrix
            matrices.append(f'<figure class="matrix"><figcaption><b>{e(title)}</b>'
                            f"</figcaption>{charts.confusion_svg(matrix)}</figure>")
    if matrices:
        out.append('<h3>Confusion matrices</h3><div class="charts">' + "".join(matrices)
                   + "</div>")
    return "".join(out)
