"""Runs ImageExampleGen outside a pipeline: the real driver (span resolution) and executor.

Used by `inception-retrain schema` (a schema draft from a folder), the ingest benchmark and the
tests: the same code path as in the pipeline, without an orchestrator or metadata store.
"""
from typing import Sequence

from google.protobuf import message
from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from inception_retrain.components.image_example_gen import executor
from inception_retrain.components.image_example_gen.component import ImageExampleGen


def run_example_gen(component: ImageExampleGen, output_uri: str,
                    beam_pipeline_args: Sequence[str] = ()) -> standard_artifacts.Examples:
    """Resolves spans as the FileBasedDriver does, runs the executor; returns the Examples."""
    exec_properties = {
        key: proto_utils.proto_to_json(value) if isinstance(value, message.Message) else value
        for key, value in component.exec_properties.items() if value is not None}
    exec_properties = component.driver_class(None).resolve_exec_properties(
        exec_properties, None, None)
    examples = standard_artifacts.Examples()
    examples.uri = output_uri
    examples.span = exec_properties["span"]
    context = base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=list(beam_pipeline_args))
    executor.Executor(context).Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]},
                                  exec_properties)
    return examples
