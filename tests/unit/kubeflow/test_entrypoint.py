"""The container entrypoint's repairs of a backend's ExecutorInput (kubeflow/entrypoint.py), on
ExecutorInputs shaped as KFP's driver builds them; no TFX run here (tests/e2e/test_kfp_emulated.py
runs every task through it)."""
import json

import pytest

from inception_retrain.kubeflow import entrypoint

EXAMPLES = {"instanceSchema": "title: tfx.Examples\ntype: object\n"}
STATISTICS = {"instanceSchema": "title: tfx.ExampleStatistics\ntype: object\n"}
INPUTS_SPEC = {"artifacts": {"examples": {"artifactType": EXAMPLES}},
               "parameters": {"exclude_splits": {"parameterType": "STRING"}}}
OUTPUTS_SPEC = {"artifacts": {"statistics": {"artifactType": STATISTICS}}}


def executor_input(**extra_outputs):
    return {
        "inputs": {"artifacts": {"examples": {"artifacts": [
            # what the open-source driver reads back from ML Metadata: no schema
            {"name": "12", "uri": "gs://b/r/ImageExampleGen/u/examples", "type": {"instanceSchema": ""},
             "metadata": {"span": 0.0, "display_name": "examples"}}]}},
            "parameterValues": {"exclude_splits": "[]"}},
        "outputs": {"artifacts": dict({"statistics": {"artifacts": [
            {"uri": "gs://b/r/StatisticsGen/v/statistics", "type": STATISTICS}]}},
            **extra_outputs), "outputFile": "/tmp/kfp_outputs/output_metadata.json"}}


LOGS = {"artifacts": [{"uri": "gs://b/r/StatisticsGen/v/executor-logs",
                       "type": {"schemaTitle": "system.Artifact"}}]}


def argv(invocation, outputs_spec=OUTPUTS_SPEC):
    args = ["--executor_class_path", "tfx.components.statistics_gen.executor.Executor",
            "--json_serialized_invocation_args", json.dumps(invocation),
            "--json_serialized_inputs_spec_args", json.dumps(INPUTS_SPEC)]
    if outputs_spec is not None:
        args += ["--json_serialized_outputs_spec_args", json.dumps(outputs_spec)]
    return args + ["--runner=DirectRunner"]


@pytest.mark.parametrize("outputs_spec", [OUTPUTS_SPEC, None])
def test_backend_log_output_is_removed_and_input_types_restored(outputs_spec):
    args, changes, _ = entrypoint.repaired_argv(argv(executor_input(**{"executor-logs": LOGS}),
                                                  outputs_spec))
    assert "--json_serialized_outputs_spec_args" not in args
    assert args[-1] == "--runner=DirectRunner"  # Beam's flags reach TFX untouched
    repaired = json.loads(args[args.index("--json_serialized_invocation_args") + 1])
    assert set(repaired["outputs"]["artifacts"]) == {"statistics"}
    examples = repaired["inputs"]["artifacts"]["examples"]["artifacts"][0]
    assert examples["type"] == EXAMPLES and examples["name"] == "12"
    assert len(changes) == 2 and "executor-logs" in changes[0]


def test_a_well_formed_input_is_passed_through():
    invocation = executor_input()
    invocation["inputs"]["artifacts"]["examples"]["artifacts"][0]["type"] = EXAMPLES
    args, changes, _ = entrypoint.repaired_argv(argv(invocation))
    assert changes == []
    assert json.loads(args[args.index("--json_serialized_invocation_args") + 1]) == invocation


def test_undeclared_outputs_of_other_types_are_refused():
    stray = {"artifacts": [{"uri": "gs://b/x", "type": {"schemaTitle": "tfx.Model"}}]}
    with pytest.raises(entrypoint.ExecutorInputError, match="'model'.*not declared"):
        entrypoint.repaired_argv(argv(executor_input(model=stray)))


def test_type_title_reads_both_schema_forms():
    assert entrypoint.type_title({"schemaTitle": "system.Artifact"}) == "system.Artifact"
    assert entrypoint.type_title(EXAMPLES) == "tfx.Examples"
    assert entrypoint.type_title({"instanceSchema": ""}) == ""


def test_minio_and_s3_artifacts_are_read_and_written_at_the_launchers_local_copies():
    """KFP's own object store: TFX gets /minio/<bucket>/<key> (where the launcher downloads
    inputs and uploads outputs from), and its ExecutorOutput the original URIs back."""
    invocation = executor_input()
    invocation["inputs"]["artifacts"]["examples"]["artifacts"][0]["uri"] = (
        "minio://mlpipeline/v2/artifacts/p/r/ImageExampleGen/u/examples")
    invocation["outputs"]["artifacts"]["statistics"]["artifacts"][0]["uri"] = (
        "s3://lab/v2/p/r/StatisticsGen/v/statistics")
    args, changes, originals = entrypoint.repaired_argv(argv(invocation))
    sent = json.loads(args[1])
    assert (sent["inputs"]["artifacts"]["examples"]["artifacts"][0]["uri"]
            == "/minio/mlpipeline/v2/artifacts/p/r/ImageExampleGen/u/examples")
    local_output = sent["outputs"]["artifacts"]["statistics"]["artifacts"][0]["uri"]
    assert local_output == "/s3/lab/v2/p/r/StatisticsGen/v/statistics"
    assert any("local copies" in change for change in changes)
    executor_output = {"artifacts": {"statistics": {"artifacts": [
        {"uri": local_output, "metadata": {"span": 0.0}}]}}}
    entrypoint.restore_uris(executor_output, originals)
    assert executor_output["artifacts"]["statistics"]["artifacts"][0] == {
        "uri": "s3://lab/v2/p/r/StatisticsGen/v/statistics", "metadata": {"span": 0.0}}


def test_gs_artifacts_are_left_to_tfx_without_the_kfp_launcher():
    """Vertex (compiled without --kfp_launcher): TFX reads and writes gs:// itself."""
    args, changes, originals = entrypoint.repaired_argv(argv(executor_input()))
    assert originals == {}
    assert json.loads(args[1])["outputs"]["artifacts"]["statistics"]["artifacts"][0][
        "uri"].startswith("gs://")


def test_gs_artifacts_go_through_the_kfp_launchers_local_copies():
    """Under KFP's launcher (which, without ML Metadata, fails a task whose declared output has
    no local copy): TFX reads and writes /gcs/<bucket>/<key>; the flag is not passed on."""
    args, changes, originals = entrypoint.repaired_argv(
        argv(executor_input()) + [entrypoint.KFP_LAUNCHER_FLAG])
    sent = json.loads(args[1])
    assert entrypoint.KFP_LAUNCHER_FLAG not in args
    assert (sent["inputs"]["artifacts"]["examples"]["artifacts"][0]["uri"]
            == "/gcs/b/r/ImageExampleGen/u/examples")
    assert originals == {"/gcs/" + uri[len("gs://"):]: uri for uri in (
        "gs://b/r/ImageExampleGen/u/examples", "gs://b/r/StatisticsGen/v/statistics")}
    assert any("/gcs/" in change for change in changes)


def test_a_schema_title_holding_the_instance_schema_is_passed_as_instance_schema():
    """KFP without ML Metadata (kubeflow/pipelines#13986): name = the producer's output key, an
    artifactId, and the whole instance-schema YAML as schemaTitle."""
    invocation = executor_input()
    invocation["inputs"]["artifacts"]["examples"]["artifacts"][0].update(
        name="examples", artifactId="7", type={"schemaTitle": EXAMPLES["instanceSchema"]})
    args, changes, _ = entrypoint.repaired_argv(argv(invocation))
    sent = json.loads(args[1])["inputs"]["artifacts"]["examples"]["artifacts"][0]
    assert sent["type"] == EXAMPLES
    assert any("instance schema" in change for change in changes)
    assert entrypoint.type_title({"schemaTitle": EXAMPLES["instanceSchema"]}) == "tfx.Examples"
