"""Issue 13, items 1 and 14, on a real ML Metadata store: a failed component's error (the one
the local runner adds to its FAILED execution, or TFX's execution result) is in the record, the
console summary, the HTML page and the verdict; executions left RUNNING by a killed run are
marked interrupted when no process holds the run lock (in flight when one does); the report's
log_path is filled on a successful run too, and its failure found in the run's log."""
import json

from conftest import holding_run_lock
from ml_metadata.proto import metadata_store_pb2
from mlmd_runs import COMPLETE, FAILED, FakeRun

from inception_retrain.pipeline import config as config_lib
from inception_retrain.pipeline import mlmd
from inception_retrain.run_reading import history, reader, report_inputs
from inception_retrain.run_reading.record import RunReport
from inception_retrain.run_rendering import page, report, summary

RUNNING = metadata_store_pb2.Execution.RUNNING
ERROR = "OSError: Unable to open file (file signature not found)"


def _html(record):
    status, sentence = report.verdict(record)
    return page.render_html(RunReport(record, "now", "m.sqlite", "root", status=status,
                                      verdict=sentence))


def test_a_failed_component_names_its_error_everywhere(tmp_path):
    """Item 1: the summary of a failed run raised KeyError, and no report said which component
    failed with what error."""
    run = FakeRun(tmp_path, run_id="run-1")
    run.execution("ImageExampleGen")
    run.execution("Trainer", state=FAILED)
    assert mlmd.record_error(run.path, "run-1", ERROR) == ["Trainer"]
    assert mlmd.record_error(run.path, "run-1", "later") == [], "an error is recorded once"
    record = reader.read(run.path, run.pipeline_name, "run-1")
    trainer = record.components[1]
    assert (trainer.state, trainer.error) == ("FAILED", ERROR)
    assert record.failure == f"Trainer: {ERROR}"
    text = summary.render(record)
    assert f"FAILED: Trainer: {ERROR}" in text
    assert "ImageExampleGen" in text and "The run stopped before evaluation" in text
    assert report.verdict(record) == ("bad", f"Failed at Trainer: {ERROR}")
    html = _html(record)
    assert f"Failed at Trainer: {ERROR}" in html and f"<td>{ERROR}</td>" in html
    assert record.to_dict()["components"][1]["error"] == ERROR


def test_tfx_execution_result_is_read_as_the_error(tmp_path):
    """Item 1: an executor that returns an error code leaves TFX's execution result."""
    run = FakeRun(tmp_path)
    run.execution("Pusher", state=FAILED, properties={mlmd.TFX_EXECUTION_RESULT: json.dumps(
        {"code": 1, "resultMessage": "PermissionError: read-only serving dir"})})
    record = reader.read(run.path, run.pipeline_name)
    assert record.components[0].error == "PermissionError: read-only serving dir"
    assert "FAILED: Pusher: PermissionError: read-only serving dir" in summary.render(record)


def test_running_executions_without_a_lock_holder_are_interrupted(tmp_path):
    """Item 14: a killed run's executions stayed RUNNING in the store with no note in the next
    summary; with a live holder of the run lock they are in flight instead."""
    work = tmp_path / "work"
    work.mkdir()
    run = FakeRun(tmp_path, run_id="run-1")
    run.execution("ImageExampleGen")
    run.execution("Trainer", state=RUNNING)
    later = run._context("pipeline_run", "run-2")
    run.run = later
    run.execution("StatisticsGen", state=COMPLETE)  # FakeRun: one node context per node

    record = reader.read(run.path, run.pipeline_name, "run-2", work_dir=str(work))
    note = "Trainer: RUNNING in run run-1, but no process holds the run lock: interrupted"
    assert [a.sentence for a in record.active] == [note]
    assert f"Note: {note}" in summary.render(record)
    assert note in _html(record)
    assert record.to_dict()["active_executions"][0]["interrupted"] is True
    killed = reader.read(run.path, run.pipeline_name, "run-1", work_dir=str(work))
    assert killed.interrupted_components == ["Trainer"]
    assert report.verdict(killed)[1].startswith("Interrupted at Trainer")
    assert "INTERRUPTED" in summary.render(killed)
    assert [r.states for r in history.sync(run.path, run.pipeline_name, str(work))] == [
        {"ImageExampleGen": "COMPLETE", "Trainer": "INTERRUPTED"}, {"StatisticsGen": "COMPLETE"}]

    with holding_run_lock(work) as holder:
        in_flight = reader.read(run.path, run.pipeline_name, "run-1", work_dir=str(work))
    assert in_flight.interrupted_components == []
    assert f"pid {holder.pid}" in in_flight.active[0].sentence
    assert "in flight" in in_flight.active[0].sentence


def test_report_json_names_the_log_of_a_successful_run_and_a_failure_from_it(tmp_path):
    """Item 14: report.json had "log_path": "" on every successful run; item 1: a report
    rebuilt later finds the failed component's error in the run's log."""
    run = FakeRun(tmp_path, run_id="2026-01-01T00:00:00.000001")
    run.execution("ImageExampleGen")
    config = config_lib.load(overrides={"work_dir": str(tmp_path / "work")})
    record = reader.read(run.path, run.pipeline_name)
    files = report.build(config, record, log_path="/logs/run-1.log", max_examples=0)
    assert json.loads(open(files.json).read())["log_path"] == "/logs/run-1.log"

    logs = tmp_path / "work" / "logs"
    logs.mkdir(parents=True)
    (logs / "run-20260101-000000-000002-7.log").write_text("another run\n")
    log = logs / "run-20260101-000000-000001-7.log"
    log.write_text(f"running p (pipeline run {record.run.run_id}) with LocalDagRunner\n"
                   f"00:00:01 [ 7/10] Trainer FAILED after 1.0 s: {ERROR}\n")
    assert report_inputs.run_log(str(tmp_path / "work"), record.run.run_id) == (
        str(log), f"Trainer: {ERROR}")
    (tmp_path / "work" / "reports").rename(tmp_path / "old-reports")  # no earlier report.json
    files = report.build(config, record, max_examples=0)
    assert json.loads(open(files.json).read())["log_path"] == str(log)
