"""The exit task on its own (no backend, no TFX): from a final status and the tasks' records in a
run folder it writes the verdict, renders a failed run's report, and takes a successful run's
verdict from RunReporter's record."""
import json
from pathlib import Path

from inception_retrain.kubeflow import exit_task, task_records


def executor_input(run: Path, state: str) -> dict:
    return {"inputs": {"parameterValues": {
                "status": {"state": state, "pipelineTaskName": "pipeline-dag", "error": {}},
                "webhook_url": "", "data_root": "gs://lab/images"}},
            "outputs": {"artifacts": {"report": {"artifacts": [
                {"uri": str(run / "FinalReport" / "salt" / "report"),
                 "type": {"schemaTitle": "inception_retrain.RunReportFiles"}}]}},
                "outputFile": str(run.parent / "pod" / "output_metadata.json")}}


def record(run: Path, task: str, state: str, finished: float, **fields) -> None:
    task_records.write(str(run), dict(task=task, state=state, finished=finished, seconds=1.0,
                                      **fields))


def test_a_failed_run_gets_a_report_whose_verdict_names_the_task_and_its_error(tmp_path):
    run = tmp_path / "root" / "inception-retrain" / "run-3"
    record(run, "ImageExampleGen", "COMPLETE", 1.0)
    error = task_records.error_line(ValueError(
        "data failed validation:\n  split 'train' has too few tulips\ndata report: x.md"))
    record(run, "DataGate", "FAILED", 2.0, error=error)
    summary = exit_task.run(executor_input(run, "FAILED"), "inception-retrain", False)
    verdict = ("Failed at DataGate: data failed validation: split 'train' has too few tulips "
               "data report: x.md")
    assert summary["verdict"] == verdict and summary["run"] == "run-3"
    folder = run / "FinalReport" / "salt" / "report"
    assert summary["report"] == str(folder / "report.html")
    assert json.loads((folder / "verdict.json").read_text()) == summary
    assert summary["tasks"] == {"ImageExampleGen": "COMPLETE", "DataGate": "FAILED"}
    assert "Failed at DataGate" in (folder / "report.html").read_text()
    output = json.loads((tmp_path / "root" / "inception-retrain" / "pod" /
                         "output_metadata.json").read_text())
    assert output["artifacts"]["report"]["artifacts"][0]["metadata"]["verdict"] == verdict


def test_a_failure_no_task_recorded_still_gets_a_report(tmp_path):
    run = tmp_path / "root" / "inception-retrain" / "run-4"
    summary = exit_task.run(executor_input(run, "FAILED"), "inception-retrain", False)
    assert summary["verdict"].startswith("Failed: the run ended FAILED; no task recorded why")
    assert (run / "FinalReport" / "salt" / "report" / "report.html").is_file()


def test_a_successful_run_reports_the_run_reporter_verdict(tmp_path):
    run = tmp_path / "root" / "inception-retrain" / "run-5"
    report = str(run / "RunReporter" / "salt" / "report")
    record(run, "RunReporter", "COMPLETE", 3.0, outputs={"report": {
        "uri": report, "metadata": {"verdict": "Blessed and pushed as version 2"}}})
    summary = exit_task.run(executor_input(run, "COMPLETE"), "inception-retrain", False)
    assert summary["verdict"] == "Blessed and pushed as version 2"
    assert summary["report"] == f"{report}/report.html"
    assert not (run / "FinalReport" / "salt" / "report" / "report.html").exists()
