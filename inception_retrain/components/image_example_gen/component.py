"""ImageExampleGen: a FileBasedExampleGen whose executor reads image folders.

Keeps FileBasedExampleGen's driver, so spans (`{SPAN}` in input patterns, e.g.
`span-{SPAN}/*/*`: a new folder is a new span), input fingerprints and caching work as for any
TFX ExampleGen. Settings travel as the ExampleGen custom_config proto, which Kubeflow compiles.
"""
from typing import Optional, Sequence, Union

from tfx import types
from tfx.components.example_gen import driver
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.dsl.placeholder import placeholder
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from inception_retrain.components import features
from inception_retrain.components.image_example_gen import (
    contract,
    executor,
    ingest,
    layout,
)

DEFAULT_SPLITS = (("train", 70), ("eval", 20), ("test", 10))


def hash_split_config(splits: Sequence = DEFAULT_SPLITS) -> example_gen_pb2.Output:
    """Output splits and their shares, partitioned on the group feature: every image of a group
    (a slide) lands in one split. The executor assigns whole groups, stratified by class, and
    keeps earlier groups where the split ledger has them (split_assignment). Without a group key
    the group is the relative path."""
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
        splits=[example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
                for name, buckets in splits],
        partition_feature_name=features.GROUP_KEY))


def input_config(input_pattern: str = "*/*", split_folders: Sequence[str] = (),
                 options: ingest.IngestOptions = ingest.IngestOptions()) -> example_gen_pb2.Input:
    """One input split per pattern ImageExampleGen reads (DataFingerprint lists the same)."""
    layout.class_level_pattern(input_pattern, options.group_folders)  # fails early on a pattern without classes
    return example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=name, pattern=pattern)
        for name, pattern in layout.split_patterns(input_pattern, split_folders,
                                                   options.manifest, options.group_folders)])


INPUT_FINGERPRINT = "input_fingerprint"
SPLIT_LEDGER = contract.SPLIT_LEDGER_PARAMETER


class ImageExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    """FileBasedExampleGen's spec plus the input fingerprint DataFingerprint computed (Kubeflow's
    kfp target): unused by the executor, it is what makes the task's cache key follow the data."""

    PARAMETERS = {**standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
                  INPUT_FINGERPRINT: ExecutionParameter(type=str, optional=True),
                  SPLIT_LEDGER: ExecutionParameter(type=str, optional=True)}


class LiteralRootDriver(driver.FileBasedDriver):
    """TFX's FileBasedDriver, with the input base taken literally: TFX globs
    `<input_base>/<pattern>` (span resolution and the input fingerprint), so a data root like
    `/data/run[1]` matched nothing; the root is escaped there, the pattern stays a pattern."""

    def get_input_processor(self, splits, range_config=None, input_base_uri=None):
        return super().get_input_processor(splits, range_config,
                                           layout.escape_root(input_base_uri or ""))


class ImageExampleGen(FileBasedExampleGen):
    """Reads `<input_base>/<prefix>/<class>/<image>`; writes tf.Examples (components.features).

    split_folders: the user's own split folders (train, eval[, test] in that order), each
    holding class folders, e.g. ("train", "val", "test"); then no hash split is made.
    options.manifest: a CSV below input_base naming every image (path, label, group, site)
    instead of class folders; input_pattern then does not apply, and split_folders name the
    folders of the manifest's paths that hold each split (`train/...` rows are train).
    split_ledger: the file that keeps each group's split across runs (a path or gs:// URI;
    "" = none: the split then depends on this ingest's data alone).
    """

    SPEC_CLASS = ImageExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    DRIVER_CLASS = LiteralRootDriver

    def __init__(self, input_base: str, splits: Sequence = DEFAULT_SPLITS,
                 input_pattern: str = "*/*", split_folders: Sequence[str] = (),
                 options: ingest.IngestOptions = ingest.IngestOptions(),
                 input_fingerprint: Optional[placeholder.Placeholder] = None,
                 split_ledger: Union[str, placeholder.Placeholder] = ""):
        # FileBasedExampleGen.__init__ builds its own spec class; this is that spec, plus one
        # parameter, with FileBasedExampleGen's defaults for the formats.
        spec = ImageExampleGenSpec(
            input_base=input_base,
            input_config=input_config(input_pattern, split_folders, options),
            output_config=(example_gen_pb2.Output() if split_folders
                           else hash_split_config(splits)),
            custom_config=executor.make_custom_config(options, input_pattern),
            range_config=None,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            examples=types.Channel(type=standard_artifacts.Examples),
            **{INPUT_FINGERPRINT: input_fingerprint, SPLIT_LEDGER: split_ledger or None})
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
