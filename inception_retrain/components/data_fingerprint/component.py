"""DataFingerprint: the fingerprint of the files ImageExampleGen will read, as a string output.

Open-source Kubeflow Pipelines runs no ExampleGen driver, so nothing there notices whether the
image folder changed; its cache keys a task on its input parameter values instead. This node
(never cached) lists the files and passes their fingerprint to ImageExampleGen as a parameter:
unchanged data gives ImageExampleGen the same cache key, so it and everything downstream of it
(Trainer included) come from the cache, and an unchanged model is not pushed again.
"""
from typing import Union

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.orchestration import data_types
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from inception_retrain.components.data_fingerprint import executor


class DataFingerprintSpec(types.ComponentSpec):
    PARAMETERS = {
        "input_base": ExecutionParameter(type=str),
        "input_config": ExecutionParameter(type=example_gen_pb2.Input),
    }
    INPUTS = {}
    OUTPUTS = {executor.FINGERPRINT_KEY: ChannelParameter(type=standard_artifacts.String)}


class DataFingerprint(base_component.BaseComponent):
    """Takes ImageExampleGen's own input_base and input_config, so both see the same files."""

    SPEC_CLASS = DataFingerprintSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, input_base: Union[str, data_types.RuntimeParameter],
                 input_config: example_gen_pb2.Input):
        super().__init__(spec=DataFingerprintSpec(
            input_base=input_base, input_config=input_config,
            **{executor.FINGERPRINT_KEY: types.Channel(type=standard_artifacts.String)}))
