"""Fingerprints the files of every input split, the way TFX's FileBasedExampleGen driver does
(file count, total bytes and checksums of modification times per split pattern)."""
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.components.base import base_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import proto_utils

from inception_retrain.components.image_example_gen import layout

FINGERPRINT_KEY = "fingerprint"  # the output: a String artifact, a parameter on Kubeflow


def fingerprint(input_base: str, input_config: example_gen_pb2.Input) -> str:
    """What the driver would record as the input fingerprint (the root taken literally, as
    ImageExampleGen's driver takes it). Like the driver's, it sees sizes and modification
    times (to the second), not contents."""
    value, _, _ = example_gen_utils.calculate_splits_fingerprint_span_and_version(
        layout.escape_root(input_base), input_config.splits)
    return value


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties["input_config"], input_config)
        value = fingerprint(exec_properties["input_base"], input_config)
        logging.info("DataFingerprint of %s: %s", exec_properties["input_base"], value)
        artifact_utils.get_single_instance(output_dict[FINGERPRINT_KEY]).value = value
