"""The report step's record (components/run_reporter/component.py) reads artifacts as TFX's Kubeflow
entrypoint hands them over: every metadata field a struct {"__value__": v}, numbers doubles."""
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils

from inception_retrain.components.run_reporter import component as pipeline_step


def as_the_entrypoint_parses(title: str, uri: str, metadata: dict):
    artifacts = json_format.ParseDict({"artifacts": [{
        "name": "7", "uri": uri, "type": {"instanceSchema": f"title: {title}\ntype: object\n"},
        "metadata": metadata}]}, pipeline_spec_pb2.ArtifactList())
    return kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict({"a": artifacts}, {})["a"]


def test_a_push_read_from_step_inputs_has_an_integer_version(tmp_path):
    pushed = as_the_entrypoint_parses("tfx.PushedModel", str(tmp_path / "pushed"), {
        "pushed": 1.0, "pushed_version": 3.0, "already_served": 0.0,
        "pushed_destination": "/mnt/lab/serving/inception_v3/3", "pruned_versions": ""})
    record = pipeline_step._record({"pushed_model": pushed}, "lab", "run-9", "/mnt/lab/tiles")
    assert record.push.version == 3 and isinstance(record.push.version, int)
    assert record.push.pushed and not record.push.already_served and record.push.by_this_run
    assert record.push.destination == "/mnt/lab/serving/inception_v3/3"
    assert [c.component for c in record.components] == ["Pusher"]
    assert record.run.run_id == "run-9" and record.run.data_root == "/mnt/lab/tiles"
    assert record.evaluation is None and record.training is None


def test_the_run_id_is_read_from_the_steps_output_path():
    assert pipeline_step.run_id_of(
        "minio://mlpipeline/v2/artifacts/lab-retrain/4f3c-run/RunReporter/9e1a/report") == \
        "4f3c-run"
