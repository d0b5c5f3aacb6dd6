"""The run report: one self-contained HTML page (run_rendering.page) and a JSON summary beside it,
for one run (the newest by default), and the model card of the version it pushed.

Rendered from the run's RunRecord (run_reading.reader), so `inception-retrain report` rebuilds it
for a finished or failed run: class counts per split, anomalies, quarantined files, training
curves of both phases, evaluation metrics per class, the confusion matrix, thumbnails of
misclassified eval images (run_reading.misclassified: the one part that runs the model), the
blessing decision with every threshold, and where the model was pushed.
"""
import dataclasses
import json
import os
from typing import Any, Dict, Optional, Tuple

from inception_retrain.components import artifact_files
from inception_retrain.pipeline import config as config_lib
from inception_retrain.run_reading import reader, report_inputs
from inception_retrain.run_reading.misclassified import MAX_EXAMPLES
from inception_retrain.run_reading.record import RunRecord, RunReport
from inception_retrain.run_rendering import compare, model_card, page, page_blocks
from inception_retrain.run_rendering.page import REPORT_HTML, REPORT_JSON

REPORT_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class ReportFiles:
    """Where one report was written."""

    html: str
    json: str
    model_card: Optional[str]


def _safe_name(run_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in run_id).strip("-")


def report_dir(work_dir: str, run_id: Optional[str]) -> str:
    """<work_dir>/reports/<run id, made a safe folder name>/: where build writes a run's
    report by default."""
    return os.path.join(work_dir, "reports", _safe_name(run_id or "unknown-run"))


def verdict(record: RunRecord, failure: str = "") -> Tuple[str, str]:
    """(css class, one sentence) saying how the run ended."""
    failed = record.failed_components
    evaluation, push = record.evaluation, record.push
    if failed:
        errors = [c.error for c in record.components if c.state == "FAILED" and c.error]
        reason = errors[0] if errors else failure
        return "bad", f"Failed at {', '.join(failed)}" + (f": {reason}" if reason else "")
    if record.interrupted_components:
        return "bad", (f"Interrupted at {', '.join(record.interrupted_components)}: RUNNING, "
                       "but no process holds the run lock")
    if failure:
        return "bad", f"Failed: {failure}"
    if evaluation is None:
        return "bad", "Stopped before evaluation; nothing was pushed"
    if not evaluation.blessed:
        first = evaluation.failures[0] if evaluation.failures else "a threshold failed"
        return "warn", f"Not blessed ({first}); the served model is unchanged"
    if push and push.pushed and push.already_served:
        return "good", (f"Already served: version {push.version} holds this model, nothing "
                        "was pushed again")
    if push and push.pushed and not push.by_this_run:
        return "good", (f"Reused from cache: nothing changed since the run that pushed version "
                        f"{push.version}")
    if push and push.pushed:
        return "good", f"Blessed and pushed as version {push.version}"
    return "warn", "Blessed, but nothing was pushed"


def to_json(report: RunReport) -> Dict[str, Any]:
    """report.json: the record's summary, the gate checks, confusion matrix, misclassified
    examples (without thumbnails), the verdict and where things are."""
    record, evaluation = report.record, report.record.evaluation
    wrong = report.misclassified
    if wrong:
        wrong = dict(wrong, items=[{k: v for k, v in item.items() if k != "thumbnail"}
                                   for item in wrong["items"]])
    return artifact_files.json_safe({
        "format": REPORT_FORMAT, "generated_at": report.generated_at,
        "run": record.run.to_dict(), "summary": record.to_dict(),
        "metadata_path": report.metadata_path, "pipeline_root": report.pipeline_root,
        "gate_checks": evaluation.checks if evaluation else [],
        "confusion_matrix": evaluation.confusion_matrix if evaluation else None,
        "misclassified": wrong, "failure": report.failure, "log_path": report.log_path,
        "report_html": report.report_html,
        "verdict": {"status": report.status, "text": report.verdict},
        "model_card": report.model_card,
        "history": report.history.to_dict() if report.history is not None else None,
        "comparison": compare.to_json(evaluation, page_blocks.class_order(record)),
        "image_sizes": {k: v for k, v in (report.extras.get("samples") or {}).items()
                        if k != "samples"} or None})


def build(config: config_lib.PipelineConfig, record: Optional[RunRecord] = None,
          failure: str = "", log_path: str = "", max_examples: int = MAX_EXAMPLES,
          output_dir: Optional[str] = None, run_id: Optional[str] = None) -> ReportFiles:
    """Writes report.html and report.json for one run (record, else run_id read from the
    store, else the newest run) under <work_dir>/reports/<run id>/ unless output_dir, and the
    model card of a pushed version."""
    if record is None:
        record = reader.read(config.metadata_path, config.pipeline_name, run_id,
                             work_dir=config.work_dir)
    output_dir = output_dir or report_dir(config.work_dir, record.run.run_id)
    report = report_inputs.assemble(
        record, previous_report=os.path.join(output_dir, REPORT_JSON), work_dir=config.work_dir,
        failure=failure, log_path=log_path, max_examples=max_examples,
        metadata_path=config.metadata_path, pipeline_root=config.pipeline_root,
        history=report_inputs.read_history(config))
    return write(report, output_dir, config.model_card)


def write(report: RunReport, output_dir: str, card_settings) -> ReportFiles:
    """Renders one RunReport into <output_dir>/report.html and report.json, and the model card
    of a pushed version beside it (run_rendering.model_card)."""
    html_path = os.path.join(output_dir, REPORT_HTML)
    json_path = os.path.join(output_dir, REPORT_JSON)
    status, sentence = verdict(report.record, report.failure)
    report = dataclasses.replace(report, report_html=html_path, status=status, verdict=sentence)
    report = dataclasses.replace(report, model_card=model_card.write(
        report.record, html_path, settings=card_settings, history=report.history))
    with artifact_files.open_text(html_path, "w") as f:
        f.write(page.render_html(report))
    with artifact_files.open_text(json_path, "w") as f:
        json.dump(to_json(report), f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")
    return ReportFiles(html_path, json_path, report.model_card)
