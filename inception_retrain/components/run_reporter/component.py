"""RunReporter: the last step of a Kubeflow run, writing what `inception-retrain run` writes
after a local run: report.html and report.json (into its output artifact) and the model card
beside the version the run pushed.

Kubeflow pods cannot read the backend's ML Metadata store, so the step reads the run from its
own input artifacts (one per output of the pipeline's components, TFX artifacts with their
ML Metadata protos) into the same RunRecord the local command reads from the store, and renders
it with the same code. A step runs only when its inputs exist: a run that stops before the
Pusher (the DataGate failed, a task crashed) gets no report here but from the exit task
(kubeflow/exit_task.py, on backends that run one; kubeflow/README.md).
"""
import dataclasses
import json
import os
import tempfile
from typing import Any, Callable, Dict, List, Mapping

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from inception_retrain.components import node_ids
from inception_retrain.components.data_gate.component import DataReport

# input key -> (component, output key): every output the report reads
INPUTS = {
    "examples": (node_ids.EXAMPLE_GEN, "examples"),
    "statistics": (node_ids.STATISTICS_GEN, "statistics"),
    "anomalies": (node_ids.EXAMPLE_VALIDATOR, "anomalies"),
    "data_report": (node_ids.DATA_GATE, "data_report"),
    "data_facts": (node_ids.DATA_GATE, "data_facts"),
    "model_run": (node_ids.TRAINER, "model_run"),
    "model": (node_ids.TRAINER, "model"),
    "evaluation": (node_ids.EVALUATOR, "evaluation"),
    "blessing": (node_ids.EVALUATOR, "blessing"),
    "pushed_model": (node_ids.PUSHER, "pushed_model"),
    "test_evaluation": (node_ids.TEST_SPLIT_EVALUATOR, "evaluation"),
}
REPORT_KEY = "report"


class RunReportFiles(types.Artifact):
    """report.html and report.json of one run."""

    TYPE_NAME = "inception_retrain.RunReportFiles"  # <namespace>.<Title> for Kubeflow


def _record(input_dict: Mapping[str, List[types.Artifact]], pipeline_name: str, run_id: str,
            data_root: str):
    """The RunRecord of the run, from the step's inputs: every component that produced one
    ran and completed (or the step would not run)."""
    from inception_retrain.run_reading import evaluation, reader
    from inception_retrain.run_reading.artifacts import RunArtifacts
    from inception_retrain.run_reading.record import ComponentRun, RunInfo, RunRecord

    outputs: Dict[str, Dict[str, List[Any]]] = {}
    for key, artifacts in input_dict.items():
        if artifacts and key in INPUTS:
            component, output = INPUTS[key]
            outputs.setdefault(component, {})[output] = [a.mlmd_artifact for a in artifacts]
    inputs = {node_ids.EVALUATOR: {"model": outputs.get(node_ids.TRAINER, {}).get("model", []),
                            "examples": outputs.get(node_ids.EXAMPLE_GEN, {}).get("examples", [])}}
    run = RunArtifacts(ran=tuple(outputs), outputs=outputs, inputs=inputs)
    push = reader.read_push(run)
    if push is not None:  # a cached Pusher would have left this step cached too
        push = dataclasses.replace(push, by_this_run=True)
    return RunRecord(
        pipeline=pipeline_name, run=RunInfo(run_id=run_id, data_root=data_root),
        components=tuple(ComponentRun(component, "COMPLETE", 0.0) for component in outputs),
        data=reader.read_data(run), training=reader.read_training(run),
        evaluation=evaluation.read_evaluation(run), test_split=evaluation.read_test_split(run),
        push=push)


def run_folder(output_uri: str) -> str:
    """<pipeline root>/<pipeline>/<run id> of an output the backend placed at
    <pipeline root>/<pipeline>/<run id>/<task>/<uuid>/<output>."""
    return os.path.dirname(os.path.dirname(os.path.dirname(output_uri.rstrip("/"))))


def run_id_of(output_uri: str) -> str:
    """The run's id as the backend names it in artifact paths."""
    return os.path.basename(run_folder(output_uri))


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        from inception_retrain.pipeline.config import ModelCardConfig
        from inception_retrain.run_reading import report_inputs
        from inception_retrain.run_rendering import report

        output = output_dict[REPORT_KEY][0]
        record = _record(input_dict, exec_properties["pipeline_name"], run_id_of(output.uri),
                         exec_properties["data_root"])
        card = ModelCardConfig(**{key: tuple(value) if isinstance(value, list) else value
                                  for key, value in json.loads(
                                      exec_properties["model_card"]).items()})
        with tempfile.TemporaryDirectory() as local:
            files = report.write(report_inputs.assemble(
                record, pipeline_root=os.path.dirname(run_folder(output.uri))), local, card)
            fileio.makedirs(output.uri)
            for path in (files.html, files.json):
                fileio.copy(path, os.path.join(output.uri, os.path.basename(path)),
                            overwrite=True)
        output.set_string_custom_property("verdict", report.verdict(record)[1])
        output.set_string_custom_property("model_card", files.model_card or "")


class RunReporterSpec(types.ComponentSpec):
    PARAMETERS = {"pipeline_name": ExecutionParameter(type=str),
                  "data_root": ExecutionParameter(type=str),
                  "model_card": ExecutionParameter(type=str)}  # ModelCardConfig as JSON
    INPUTS = {key: ChannelParameter(type=_type, optional=True) for key, _type in {
        "examples": standard_artifacts.Examples,
        "statistics": standard_artifacts.ExampleStatistics,
        "anomalies": standard_artifacts.ExampleAnomalies,
        "data_report": DataReport, "data_facts": standard_artifacts.HyperParameters,
        "model_run": standard_artifacts.ModelRun, "model": standard_artifacts.Model,
        "evaluation": standard_artifacts.ModelEvaluation,
        "blessing": standard_artifacts.ModelBlessing,
        "pushed_model": standard_artifacts.PushedModel,
        "test_evaluation": standard_artifacts.ModelEvaluation}.items()}
    OUTPUTS = {REPORT_KEY: ChannelParameter(type=RunReportFiles)}


def step(pipeline_name: str, data_root, model_card_json: str
         ) -> Callable[[Mapping[str, base_component.BaseComponent]], base_component.BaseComponent]:
    """create_pipeline's report_step: the RunReporter wired to the DAG's nodes by id."""
    def make(nodes: Mapping[str, base_component.BaseComponent]):
        channels = {key: nodes[component].outputs[output]
                    for key, (component, output) in INPUTS.items() if component in nodes}
        return RunReporter(pipeline_name=pipeline_name, data_root=data_root,
                           model_card=model_card_json, **channels).with_id(node_ids.RUN_REPORTER)
    return make


class RunReporter(base_component.BaseComponent):
    SPEC_CLASS = RunReporterSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, pipeline_name: str, data_root, model_card: str, **channels):
        super().__init__(spec=RunReporterSpec(
            pipeline_name=pipeline_name, data_root=data_root, model_card=model_card,
            report=types.Channel(type=RunReportFiles), **channels))
