"""The run record is read from a real ML Metadata store (SQLite, written by tests/mlmd_runs.py
the way TFX's LocalDagRunner records a run) and tolerates every section being absent: a run
stopped by the DataGate has data but no training, evaluation or push; components that failed
or left files out give None sections, never a KeyError; and every renderer takes such a
record."""
import json

import pytest
from mlmd_runs import COMPLETE, FAILED, FakeRun, write_statistics
from tensorflow_metadata.proto.v0 import anomalies_pb2

from inception_retrain.components.image_example_gen import contract as example_gen
from inception_retrain.components.trainer import contract as trainer
from inception_retrain.run_reading import reader
from inception_retrain.run_reading.record import RunReport
from inception_retrain.run_rendering import model_card, page, report, summary

COUNTS = {"train": {"common": 10, "rare": 2}, "eval": {"common": 3, "rare": 1}}


def _data_components(run: FakeRun, data_gate_state=FAILED, facts=None):
    examples = run.folder("ImageExampleGen", "examples", "1")
    quarantine = examples / example_gen.QUARANTINE_DIR
    quarantine.mkdir()
    (quarantine / f"layout.{example_gen.QUARANTINE_FILE}").write_text(json.dumps(
        {"relative_path": "rare/x.txt", "reason": "not an image", "category": "format"}) + "\n")
    run.execution("ImageExampleGen", properties={"input_base": "/data"}, outputs={
        "examples": (str(examples), {example_gen.QUARANTINED_PROPERTY: 1,
                                     example_gen.SKIPPED_PROPERTY: 0}, list(COUNTS))})
    statistics = run.folder("StatisticsGen", "statistics", "2")
    write_statistics(statistics, COUNTS)
    run.execution("StatisticsGen", outputs={"statistics": (str(statistics), {}, list(COUNTS))})
    anomalies = run.folder("ExampleValidator", "anomalies", "3")
    for split in COUNTS:
        (anomalies / f"Split-{split}").mkdir()
        (anomalies / f"Split-{split}" / "SchemaDiff.pb").write_bytes(
            anomalies_pb2.Anomalies().SerializeToString())
    run.execution("ExampleValidator", outputs={"anomalies": (str(anomalies), {}, list(COUNTS))})
    data_report = run.folder("DataGate", "data_report", "4")
    (data_report / "data_report.md").write_text("# Data report\nfailed: class balance\n")
    outputs = {"data_report": (str(data_report), {}, None)}
    if facts is not None:
        data_facts = run.folder("DataGate", "data_facts", "4")
        (data_facts / "data_facts.json").write_text(json.dumps(facts))
        outputs["data_facts"] = (str(data_facts), {}, None)
    run.execution("DataGate", state=data_gate_state, outputs=outputs)


def _render_all(record, tmp_path):
    text = summary.render(record)
    status, sentence = report.verdict(record, "DataValidationError: class balance")
    html = page.render_html(RunReport(record, "now", "m.sqlite", "root", status=status,
                                      verdict=sentence))
    assert model_card.write(record, str(tmp_path / "report.html")) is None  # nothing pushed
    limits = model_card.limits(record)
    json.dumps(report.to_json(RunReport(record, "now", "m.sqlite", "root")), allow_nan=False)
    return text, html, status, sentence, limits


def test_run_stopped_by_the_data_gate_has_data_and_nothing_after(tmp_path):
    run = FakeRun(tmp_path)
    _data_components(run)
    record = reader.read(run.path, run.pipeline_name)
    assert record.run.run_id == "run-1" and record.run.data_root == "/data"
    assert record.failed_components == ["DataGate"]
    data = record.data
    assert data.class_counts == COUNTS and data.classes == ["common", "rare"]
    assert data.quarantined_count == 1 and data.skipped_count == 0
    assert [q["relative_path"] for q in data.quarantine] == ["rare/x.txt"]
    assert data.anomalies == [] and data.warnings is None  # the failed gate wrote no facts
    assert data.report_text.startswith("# Data report")
    assert (record.training, record.evaluation, record.test_split, record.push) == (
        None, None, None, None)
    text, html, status, sentence, limits = _render_all(record, tmp_path)
    assert "The run stopped before evaluation; nothing was pushed." in text
    assert "Quarantined files: 1" in text and "rare/x.txt: not an image" in text
    assert status == "bad" and sentence.startswith("Failed at DataGate: DataValidationError")
    assert "The Trainer did not run" in html and "The Evaluator did not run." in html
    assert "Failed at DataGate" in html and "<td>rare</td>" in html
    assert any("fewer than 30 training images: common, rare" in line for line in limits)
    summary_json = record.to_dict()
    assert summary_json["data"]["class_counts"] == COUNTS and "warnings" not in summary_json["data"]
    assert summary_json["training"] is None and summary_json["push"] is None


def test_components_that_left_nothing_give_empty_sections(tmp_path):
    """A Trainer without its report, an Evaluator without TFMA output, a test-split evaluator
    without a gate record, a Pusher without an output artifact, data files removed."""
    run = FakeRun(tmp_path)
    statistics = run.folder("StatisticsGen", "statistics", "2")   # no FeatureStats.pb in it
    run.execution("ImageExampleGen", outputs={})                  # no examples artifact
    run.execution("StatisticsGen", outputs={"statistics": (str(statistics), {}, ["train"])})
    run.execution("Trainer", outputs={"model_run": (str(run.folder("Trainer", "run")), {}, None)})
    run.execution("Evaluator", state=FAILED, outputs={
        "evaluation": (str(run.folder("Evaluator", "evaluation")), {}, None)})
    run.execution("TestSplitEvaluator", outputs={
        "evaluation": (str(run.folder("TestSplitEvaluator", "evaluation")), {}, None)})
    run.execution("Pusher", state=FAILED)
    record = reader.read(run.path, run.pipeline_name)
    assert record.data.class_counts == {} and record.data.quarantine is None
    assert record.training is None and record.evaluation is None and record.push is None
    assert record.test_split.skipped == "no record (the evaluation did not run)"
    text, html, status, _, _ = _render_all(record, tmp_path)
    assert "Test split: not evaluated (no record" in text
    assert status == "bad" and "The Pusher did not run" in html


def test_a_run_is_read_by_its_id_and_a_missing_one_is_named(tmp_path):
    run = FakeRun(tmp_path)
    _data_components(run, data_gate_state=COMPLETE, facts={"warnings": ["rare is rare"]})
    record = reader.read(run.path, run.pipeline_name, run_id="run-1")
    assert record.data.warnings == ["rare is rare"]
    assert "Data warning: rare is rare" in summary.render(record)
    with pytest.raises(FileNotFoundError, match="no run 'run-9' of pipeline 'p'"):
        reader.read(run.path, run.pipeline_name, run_id="run-9")
    with pytest.raises(FileNotFoundError, match="no metadata store"):
        reader.read(str(tmp_path / "absent.sqlite"), "p")


@pytest.mark.parametrize("report_json, random", [
    ({"base_weights": "ImageNet (downloaded)", "base_weights_random": False}, False),
    ({"base_weights": "random initialisation (base_weights=none)",
      "base_weights_random": True}, True),
    ({"base_weights": "RANDOM INITIALISATION: ImageNet weights could not be downloaded"}, True),
    ({"base_weights": "weights file /w.h5"}, False),
])
def test_random_base_weights_is_a_flag_old_reports_are_read_by_their_text(tmp_path, report_json,
                                                                          random):
    run = FakeRun(tmp_path)
    model_run = run.folder("Trainer", "model_run")
    trainer.write_training_report(dict(report_json, phase1={
        "epochs_run": 2, "seconds": 1.5, "history": {"loss": [2.0, 1.0], "val_loss": [1.5, 1.2],
                                                     "accuracy": [0.4, 0.6]}},
        phase2={"skipped": "phase2_epochs=0"}), str(model_run))
    run.execution("Trainer", outputs={"model_run": (str(model_run), {}, None)})
    training = reader.read(run.path, run.pipeline_name).training
    assert training.base_weights_random is random
    phase1, phase2 = training.phases
    assert phase1.best_val_loss == 1.2 and phase1.last["accuracy"] == 0.6
    assert phase2.skipped == "phase2_epochs=0"
    text = summary.render(reader.read(run.path, run.pipeline_name))
    assert ("!! BASE WEIGHTS:" in text) is random
    assert "Training phase2: skipped (phase2_epochs=0)" in text
