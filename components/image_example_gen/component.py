"""ImageExampleGen: a FileBasedExampleGen whose executor reads image folders.

Keeps FileBasedExampleGen's driver, so spans (`{SPAN}` in input patterns), input fingerprints
and caching work as for any TFX ExampleGen.
"""
from typing import Optional, Sequence

from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components import features
from components.image_example_gen import executor

DEFAULT_SPLITS = (("train", 70), ("eval", 20), ("test", 10))


def hash_split_config(splits: Sequence = DEFAULT_SPLITS) -> example_gen_pb2.Output:
    """Output splits by a hash of the relative path: adding images never moves earlier ones."""
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
        splits=[example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
                for name, buckets in splits],
        partition_feature_name=features.PATH_KEY))


class ImageExampleGen(FileBasedExampleGen):
    """Reads `<input_base>/<class>/<image>`; writes tf.Examples (see components.features)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, input_base: str, splits: Sequence = DEFAULT_SPLITS,
                 input_pattern: str = "*/*",
                 input_config: Optional[example_gen_pb2.Input] = None):
        super().__init__(
            input_base=input_base,
            input_config=input_config or example_gen_pb2.Input(splits=[
                example_gen_pb2.Input.Split(name="images", pattern=input_pattern)]),
            output_config=hash_split_config(splits))
