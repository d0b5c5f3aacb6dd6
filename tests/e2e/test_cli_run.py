"""The command line on real runs: the ingest counts progress prints after a run, and a run stopped
by the DataGate ending with the failed component, a report and the log's path."""
import json
import os
from pathlib import Path

from conftest import write_class_images

from inception_retrain.cli import main as cli
from inception_retrain.cli import progress


def test_ingest_counts_of_a_real_run(flowers_run):
    config = flowers_run.config
    counts = flowers_run.summary["data"]["class_counts"]
    lines = progress.ingest_counts(config.metadata_path, config.pipeline_name, "StatisticsGen")
    assert lines[0] == "examples: " + ", ".join(f"{split} {sum(c.values())}"
                                                for split, c in counts.items())
    assert lines[1].startswith(f"classes ({len(flowers_run.classes)}): ")
    gen = progress.ingest_counts(config.metadata_path, config.pipeline_name, "ImageExampleGen")
    assert gen == ["quarantined files: 0, skipped by choice: 0"]




def test_run_stopped_by_the_data_gate_says_where_and_writes_a_report(tmp_path, capsys):
    """The real pipeline through the command line, stopped by the class-balance rule: progress
    lines up to the DataGate, which is named as failed; the summary, a report of the partial
    run, and the log with the traceback; exit code 1."""
    data, work = write_class_images(tmp_path / "data", {"common": 14, "rare": 2}), tmp_path / "work"
    code = cli.main(["run", "--data-root", str(data), "--work-dir", str(work),
                     "--base-weights", "none", "--set", "data.max_class_ratio=3",
                     "--set", "data.min_examples_per_class=1", "--report-examples", "0"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    for n, component in enumerate(["ImageExampleGen", "ImportSchemaGen", "StatisticsGen",
                                   "ExampleValidator"], start=1):
        assert f"] {component} started" in out and f"] {component} done in" in out, component
    assert "    examples: train " in out and "quarantined files: 0" in out
    assert "] DataGate FAILED after" in out and "rare" in out
    assert "Trainer started" not in out
    assert "Using deployment config" not in out, "TFX's INFO noise reached the console"
    report_line = next(line for line in out.splitlines() if line.startswith("[run] report: "))
    report_html = Path(report_line.split(": ", 1)[1])
    data_json = json.loads((report_html.parent / "report.json").read_text())
    assert data_json["verdict"]["status"] == "bad"
    assert data_json["verdict"]["text"].startswith("Failed at DataGate: DataValidationError")
    assert "Failed at DataGate" in report_html.read_text()
    log_line = next(line for line in out.splitlines() if line.startswith("[run] full log: "))
    log = Path(log_line.split(": ", 1)[1]).read_text()
    assert "Traceback (most recent call last)" in log and "Component DataGate is running." in log
    assert "FAILED" in err
    assert os.path.dirname(log_line.split(": ", 1)[1]) == str(work / "logs")
    # The record of that failed run, read back from its store: data, nothing after the gate;
    # and that run again by its id through `inception-retrain report --run`.
    from inception_retrain.run_reading import reader
    from inception_retrain.run_rendering import model_card, summary

    record = reader.read(str(work / "metadata.sqlite"), "inception-retrain")
    assert record.failed_components == ["DataGate"]
    assert record.data.class_counts["train"]["rare"] >= 1 and record.data.anomalies == []
    assert (record.training, record.evaluation, record.push) == (None, None, None)
    assert "The run stopped before evaluation" in summary.render(record)
    assert model_card.write(record) is None
    assert cli.main(["report", "--work-dir", str(work), "--run", record.run.run_id,
                     "--report-examples", "0"]) == 0
    assert "Failed at DataGate" in report_html.read_text()
