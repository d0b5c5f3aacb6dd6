"""What a run report shows beside the record, read once before anything renders: the failure
and log an earlier report or the run's log recorded, the misclassified eval images (the one part
that runs the model), sample images per class and the work dir's history."""
import datetime
import logging
import os
import re
from typing import Optional, Tuple

from inception_retrain.components import artifact_files
from inception_retrain.pipeline import config as config_lib
from inception_retrain.run_reading import history as history_lib
from inception_retrain.run_reading.misclassified import MAX_EXAMPLES, misclassified
from inception_retrain.run_reading.record import RunRecord, RunReport

_LOG = logging.getLogger(__name__)


def _previous_failure(json_path: str, run_id: Optional[str]) -> Tuple[str, str]:
    """The failure message and log path an earlier report of the same run recorded."""
    previous = artifact_files.read_json(json_path)
    if previous is None:
        return "", ""
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


def _samples(record: RunRecord, max_examples: int):
    """Sample images per class and image sizes (None when turned off with the misclassified
    images, --report-examples 0, or when the examples cannot be read)."""
    from inception_retrain.run_reading import samples

    uri = record.evaluation.examples_uri if record.evaluation else None
    if max_examples <= 0 or not uri:
        return None
    try:
        return samples.read(uri)
    except Exception:  # noqa: BLE001 (pictures must not cost the report)
        _LOG.warning("sample images not read", exc_info=True)
        return None


def read_history(config: config_lib.PipelineConfig):
    """The work dir's history for the report (None, logged, when it cannot be read: the
    run's own report comes first)."""
    try:
        return history_lib.read(config.metadata_path, config.pipeline_name, config.push_base,
                                config.work_dir)
    except Exception:  # noqa: BLE001 (a broken history must not hide the run's report)
        _LOG.warning("history not read", exc_info=True)
        return None


def assemble(record: RunRecord, previous_report: str = "", work_dir: str = "", failure: str = "",
             log_path: str = "", max_examples: int = MAX_EXAMPLES, metadata_path: str = "",
             pipeline_root: str = "", history=None) -> RunReport:
    """The RunReport of one record: everything the page, its JSON and the card show, read now.
    previous_report: the report.json an earlier report of this run left (its failure and log
    are kept); work_dir: where the run's log is looked for."""
    run_id = record.run.run_id
    previous_failure, previous_log = (_previous_failure(previous_report, run_id)
                                      if previous_report else ("", ""))
    if work_dir and not (failure and log_path):
        found_log, logged_failure = run_log(work_dir, run_id)
        log_path = log_path or previous_log or found_log
        failure = failure or previous_failure or (logged_failure if record.failed_components
                                                  else "")
    return RunReport(
        record=record, generated_at=datetime.datetime.now().isoformat(timespec="seconds"),
        metadata_path=metadata_path, pipeline_root=pipeline_root,
        misclassified=(misclassified(record.evaluation, max_examples)
                       if record.evaluation else None),
        failure=failure, log_path=log_path, history=history,
        extras={"samples": _samples(record, max_examples)})
