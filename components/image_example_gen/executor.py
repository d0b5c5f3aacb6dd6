"""Beam executor of ImageExampleGen: files -> tf.Examples, bad files -> a quarantine list."""
import json
import logging
import os
from typing import Any, Dict, List

import apache_beam as beam
from apache_beam.io import fileio
import tensorflow as tf
from tfx import types
from tfx.components.example_gen import base_example_gen_executor
from tfx.types import standard_component_specs

from components.image_example_gen import ingest

QUARANTINE_FILE = "quarantine.jsonl"
QUARANTINED_PROPERTY = "quarantined_count"
_QUARANTINE_DIR = "_quarantine_dir"
_QUARANTINE_TAG = "quarantine"


class _ConvertImage(beam.DoFn):
    """Reads and converts one file; quarantined files go to a tagged output, counted."""

    def __init__(self, root: str, options: ingest.IngestOptions):
        self._root = root
        self._options = options
        self._examples = beam.metrics.Metrics.counter("ImageExampleGen", "examples")
        self._quarantined = beam.metrics.Metrics.counter("ImageExampleGen", "quarantined")

    def process(self, path: str):
        result = ingest.example_or_quarantine(path, self._root, self._options)
        if result is None:
            return
        if isinstance(result, ingest.Quarantined):
            self._quarantined.inc()
            logging.warning("quarantined %s: %s", result.relative_path, result.reason)
            yield beam.pvalue.TaggedOutput(_QUARANTINE_TAG, json.dumps(result.as_dict()))
        else:
            self._examples.inc()
            yield result


def images_to_examples(pipeline: beam.Pipeline, root: str, split_pattern: str,
                       options: ingest.IngestOptions, quarantine_path: str):
    """The ingest as a plain Beam function: examples out, quarantine lines written to a file."""
    converted = (
        pipeline
        | "MatchFiles" >> fileio.MatchFiles(os.path.join(root, split_pattern),
                                           empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW)
        | "Paths" >> beam.Map(lambda metadata: metadata.path)
        | "Distribute" >> beam.Reshuffle()
        | "Convert" >> beam.ParDo(_ConvertImage(root, options)).with_outputs(
            _QUARANTINE_TAG, main="examples"))
    _ = (converted[_QUARANTINE_TAG]
         | "WriteQuarantine" >> beam.io.WriteToText(quarantine_path, shard_name_template=""))
    return converted["examples"]


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _ImagesToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                     split_pattern: str) -> beam.pvalue.PCollection:
    root = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    pattern_tag = "".join(c if c.isalnum() else "_" for c in split_pattern).strip("_")
    quarantine_path = os.path.join(exec_properties[_QUARANTINE_DIR],
                                   f"{pattern_tag}.{QUARANTINE_FILE}")
    return images_to_examples(pipeline, root, split_pattern, ingest.IngestOptions(),
                              quarantine_path)


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Checks the folder layout, then runs the Beam ingest and records the quarantine."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ImagesToExample

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        ingest.validate_layout(exec_properties[standard_component_specs.INPUT_BASE_KEY])
        examples = output_dict[standard_component_specs.EXAMPLES_KEY][0]
        quarantine_dir = os.path.join(examples.uri, "quarantine")
        tf.io.gfile.makedirs(quarantine_dir)
        super().Do(input_dict, output_dict, dict(exec_properties, **{_QUARANTINE_DIR: quarantine_dir}))
        records = read_quarantine(examples.uri)
        examples.set_int_custom_property(QUARANTINED_PROPERTY, len(records))
        if records:
            logging.warning("ImageExampleGen quarantined %d file(s); list in %s",
                            len(records), quarantine_dir)


def read_quarantine(examples_uri: str) -> List[Dict[str, str]]:
    """The quarantine records written beside an Examples artifact's splits."""
    records = []
    for path in sorted(tf.io.gfile.glob(os.path.join(examples_uri, "quarantine", "*"))):
        with tf.io.gfile.GFile(path) as f:
            records.extend(json.loads(line) for line in f if line.strip())
    return records
