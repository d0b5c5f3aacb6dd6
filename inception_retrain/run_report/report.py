"""The run report: one self-contained HTML page (run_report.page) and a JSON summary beside it,
for one run (the newest by default), and the model card of the version it pushed.

Rendered from the run's RunRecord (run_report.reader), so `inception-retrain report` rebuilds it
for a finished or failed run: class counts per split, anomalies, quarantined files, training
curves of both phases, evaluation metrics per class, the confusion matrix, thumbnails of
misclassified eval images (run_report.misclassified: the one part that runs the model), the
blessing decision with every threshold, and where the model was pushed.
"""
import dataclasses
import datetime
import json
import math
import os
import re
from typing import Any, Dict, Optional, Tuple

from inception_retrain.pipeline import config as config_lib
from inception_retrain.run_report import compare, model_card, page, page_blocks, reader
from inception_retrain.run_report.misclassified import (  # noqa: F401 (the report's limits)
    MAX_EXAMPLES, MAX_THUMBNAILS, THUMBNAIL_PX, misclassified)
from inception_retrain.run_report.page import REPORT_HTML, REPORT_JSON
from inception_retrain.run_report.record import RunRecord, RunReport

REPORT_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class ReportFiles:
    """Where one report was written."""

    html: str
    json: str
    model_card: Optional[str]


def _previous_failure(json_path: str, run_id: Optional[str]) -> Tuple[str, str]:
    """The failure message and log path an earlier report of the same run recorded."""
    if not os.path.exists(json_path):
        return "", ""
    with open(json_path) as f:
        previous = json.load(f)
    if previous.get("run", {}).get("run_id") != run_id:
        return "", ""
    return previous.get("failure") or "", previous.get("log_path") or ""


# The console line cli.progress writes (into the log too) when a component fails.
_FAILED_LINE = re.compile(r"\] (\S+) FAILED after [0-9.]+ s: (.*)$")
_LOG_SCAN_BYTES = 4 << 20


def run_log(work_dir: str, run_id: Optional[str]) -> Tuple[str, str]:
    """(path, failure) of the log of run run_id under <work_dir>/logs/ (the local runner logs
    the run id as it starts; newest logs first): failure is the line that log gave for a failed
    component, "" if none. ("", "") when no log names the run."""
    logs = os.path.join(work_dir, "logs")
    if not run_id or not os.path.isdir(logs):
        return "", ""
    names = sorted((n for n in os.listdir(logs) if n.endswith(".log")), reverse=True)
    for name in names:
        path = os.path.join(logs, name)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read(_LOG_SCAN_BYTES)
        except OSError:
            continue
        if run_id in text:
            failures = [m.group(1) + ": " + m.group(2) for m in map(
                _FAILED_LINE.search, text.splitlines()) if m]
            return path, failures[0] if failures else ""
    return "", ""


def _safe_name(run_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in run_id).strip("-")


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
    return _finite({
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
    run_id = record.run.run_id or "unknown-run"
    output_dir = output_dir or os.path.join(config.work_dir, "reports", _safe_name(run_id))
    previous_failure, previous_log = _previous_failure(
        os.path.join(output_dir, REPORT_JSON), run_id)
    if not (failure and log_path):
        found_log, logged_failure = run_log(config.work_dir, run_id)
        log_path = log_path or previous_log or found_log
        failure = failure or previous_failure or (logged_failure if record.failed_components
                                                  else "")
    return write(record, output_dir, config.model_card, failure=failure, log_path=log_path,
                 max_examples=max_examples, metadata_path=config.metadata_path,
                 pipeline_root=config.pipeline_root, history=_history(config, record))


def write(record: RunRecord, output_dir: str, card_settings, failure: str = "",
          log_path: str = "", max_examples: int = MAX_EXAMPLES, metadata_path: str = "",
          pipeline_root: str = "", history=None) -> ReportFiles:
    """Renders one record into <output_dir>/report.html and report.json (a local folder), and
    the model card of a pushed version beside it (run_report.model_card)."""
    os.makedirs(output_dir, exist_ok=True)
    html_path = os.path.join(output_dir, REPORT_HTML)
    json_path = os.path.join(output_dir, REPORT_JSON)
    status, sentence = verdict(record, failure)
    report = RunReport(
        record=record, generated_at=datetime.datetime.now().isoformat(timespec="seconds"),
        metadata_path=metadata_path, pipeline_root=pipeline_root,
        misclassified=(misclassified(record.evaluation, max_examples)
                       if record.evaluation else None),
        failure=failure, log_path=log_path, report_html=html_path, status=status,
        verdict=sentence, history=history, extras={"samples": _samples(record, max_examples)})
    report = dataclasses.replace(report, model_card=model_card.write(
        record, html_path, settings=card_settings, history=report.history))
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(page.render_html(report))
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(to_json(report), f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")
    return ReportFiles(html_path, json_path, report.model_card)


def _samples(record: RunRecord, max_examples: int):
    """Sample images per class and image sizes (None when turned off with the misclassified
    images, --report-examples 0, or when the examples cannot be read)."""
    from inception_retrain.run_report import samples

    uri = record.evaluation.examples_uri if record.evaluation else None
    if max_examples <= 0 or not uri:
        return None
    try:
        return samples.read(uri)
    except Exception:  # noqa: BLE001 (pictures must not cost the report)
        import logging

        logging.getLogger(__name__).warning("sample images not read", exc_info=True)
        return None


def _history(config: config_lib.PipelineConfig, record: RunRecord):
    """The work dir's history for the report (None, logged, when it cannot be read: the
    run's own report comes first)."""
    from inception_retrain.run_report import history

    try:
        return history.read(config.metadata_path, config.pipeline_name, config.push_base,
                            config.work_dir)
    except Exception:  # noqa: BLE001 (a broken history must not hide the run's report)
        import logging

        logging.getLogger(__name__).warning("history not read", exc_info=True)
        return None


def _finite(value):
    """NaN and infinities (e.g. the precision of a class never predicted) become null: strict
    JSON parsers refuse NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
