"""Beam executor of ImageExampleGen: files -> tf.Examples, bad files -> a quarantine list.

Settings arrive in the component's custom_config (a JSON-serialisable Struct, so the same
component compiles for Kubeflow): ingest limits, the unresolved input pattern (for the
previous span's label counts) and the user's split folders.
"""
import json
import logging
import posixpath
import re
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam
import tensorflow as tf
from apache_beam import coders
from apache_beam.io import filebasedsink, fileio
from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.runners.direct.direct_runner import DirectRunner
from google.protobuf import json_format, struct_pb2
from tfx import types
from tfx.components.example_gen import base_example_gen_executor, write_split
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from inception_retrain.components import artifact_files, features, node_ids
from inception_retrain.components.image_example_gen import (
    contract, conversion, ingest, layout, manifest, slide_regions, slides, split_ledger)
from inception_retrain.components.image_example_gen.contract import (  # noqa: F401 (re-exported)
    GROUPED_PROPERTY,
    INDEX_DIR,
    INDEX_FILE,
    PREVIOUS_SPAN_COUNTS_PROPERTY,
    PREVIOUS_SPAN_PROPERTY,
    QUARANTINE_DIR,
    QUARANTINE_FILE,
    QUARANTINED_PROPERTY,
    SKIPPED_PROPERTY,
    read_quarantine,
    write_index,
    write_quarantine,
)

INGEST_KEY = "ingest"
PATTERN_KEY = "input_pattern"
_QUARANTINE_TAG = "quarantine"
_SLIDES_TAG = "slides"
_SPAN_SPEC = re.compile(r"\{SPAN(:\d+)?\}")
# zlib level of the gzipped split TFRecords. 0 writes stored deflate blocks: still the gzip
# stream that tf.data (compression_type="GZIP") and TFX's TFXIO readers expect, but the payloads
# are JPEG/PNG bytes, already compressed. On the 74 MB flowers set zlib's default level (what
# TFX's WriteSplit gets from beam.io.WriteToTFRecord) saved 2% of the bytes for 2-4 s of CPU,
# as much as all the decoding; level 1 saved 1.9% at the same cost; level 0 takes ~0.1 s.
SPLIT_GZIP_LEVEL = 0


def make_custom_config(options: ingest.IngestOptions,
                       input_pattern: str) -> example_gen_pb2.CustomConfig:
    """The executor's settings as an ExampleGen CustomConfig (a Struct packed in an Any)."""
    struct = struct_pb2.Struct()
    struct.update({INGEST_KEY: options.as_dict(), PATTERN_KEY: input_pattern})
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(struct)
    return config


def read_custom_config(exec_properties: Dict[str, Any]) -> Tuple[ingest.IngestOptions, str]:
    """(ingest options, unresolved input pattern) from exec_properties; defaults when unset."""
    text = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if not text:
        return ingest.IngestOptions(), ""
    config = proto_utils.json_to_proto(text, example_gen_pb2.CustomConfig())
    struct = struct_pb2.Struct()
    config.custom_config.Unpack(struct)
    settings = json_format.MessageToDict(struct)
    values = settings[INGEST_KEY]
    int_fields = {k for k, v in ingest.IngestOptions().as_dict().items() if isinstance(v, int)}
    options = ingest.IngestOptions.from_dict(
        {k: int(v) if k in int_fields else v for k, v in values.items()})
    return options, settings[PATTERN_KEY]


def index_record(example) -> Dict[str, str]:
    """What the DataGate's split and leakage checks read of one example (no image bytes)."""
    feature = example.features.feature

    def text(key):
        values = feature[key].bytes_list.value if key in feature else []
        return values[0].decode("utf-8") if values else ""

    return {"path": text(features.PATH_KEY), "label": text(features.LABEL_KEY),
            "group": text(features.GROUP_KEY), "site": text(features.SITE_KEY),
            "sha256": text(features.CONTENT_HASH_KEY)}


class ConvertImage(beam.DoFn):
    """Reads and converts one file; quarantined files go to a tagged output, counted. A slide
    (slides.is_slide) is one work item whose tiles are its examples; its accounting goes to
    a tagged output too."""

    def __init__(self, root: str, options: ingest.IngestOptions):
        self._root = root
        self._options = options
        self._examples = beam.metrics.Metrics.counter(node_ids.EXAMPLE_GEN, "examples")
        self._quarantined = beam.metrics.Metrics.counter(node_ids.EXAMPLE_GEN, "quarantined")

    def _may_be_slide(self, full: str, row: Optional[manifest.ManifestRow]) -> bool:
        """A visible (or manifest-named) file with a slide's extension."""
        return (slides.has_slide_extension(full)
                and (row is not None
                     or not ingest.is_hidden(ingest.relative_to_root(full, self._root))))

    def _results(self, full: str, row: Optional[manifest.ManifestRow]):
        """A slide's tiles and account (a slide on an object store read from a local copy,
        deleted after: OpenSlide reads local files only), or the file's example or quarantine."""
        if self._may_be_slide(full, row) and slides.is_slide(full):
            annotation = slide_regions.annotation_path(full)
            with artifact_files.local_copies([full, annotation]) as local:
                yield from conversion.slide_examples(full, self._root, self._options, row,
                                                     tuple(local))
            return
        yield conversion.example_or_quarantine(full, self._root, self._options, row)

    def process(self, path):
        """path: a file path, or a manifest.ManifestRow (path below the root, label, group)."""
        row = path if isinstance(path, manifest.ManifestRow) else None
        full = posixpath.join(self._root, row.path) if row else path
        if row is None and slide_regions.is_annotation_of_a_slide(full, slides.SLIDE_EXTENSIONS):
            return  # a slide's region labels, read with the slide
        results = self._results(full, row)
        for result in results:
            if result is None:
                continue
            if isinstance(result, slides.SlideAccount):
                yield beam.pvalue.TaggedOutput(_SLIDES_TAG, result.as_dict())
            elif isinstance(result, ingest.Quarantined):
                self._quarantined.inc()
                logging.warning("quarantined %s: %s", result.relative_path, result.reason)
                yield beam.pvalue.TaggedOutput(_QUARANTINE_TAG, result)
            else:
                self._examples.inc()
                yield result


def one_local_worker(pipeline: beam.Pipeline) -> bool:
    """Whether the pipeline runs in a single worker of Beam's DirectRunner (the default).

    There a Reshuffle neither spreads nor reorders anything: the FnApiRunner buffers its
    GroupByKey in insertion order and hands it to the one worker as it came, so the records
    written are the same, in the same order and shards, with or without it. It would still cost
    a stage boundary (every element encoded, buffered in memory and decoded again), so the
    ingest spreads the file paths over workers only where there are several.
    """
    return (isinstance(pipeline.runner, DirectRunner)
            and pipeline.options.view_as(DirectOptions).direct_num_workers == 1)


def convert_paths(paths: beam.PCollection, root: str, options: ingest.IngestOptions,
                  label: str = "Convert"
                  ) -> Tuple[beam.PCollection, beam.PCollection, beam.PCollection]:
    """Paths -> (tf.Examples, ingest.Quarantined records, slide accounts); spread over the
    workers first (a listing arrives as one bundle), unless there is only one
    (one_local_worker)."""
    if not one_local_worker(paths.pipeline):
        paths = paths | f"{label}Distribute" >> beam.Reshuffle()
    converted = paths | label >> beam.ParDo(ConvertImage(root, options)).with_outputs(
        _QUARANTINE_TAG, _SLIDES_TAG, main="examples")
    return converted["examples"], converted[_QUARANTINE_TAG], converted[_SLIDES_TAG]


def images_to_examples(pipeline: beam.Pipeline, root: str, split_pattern: str,
                       options: ingest.IngestOptions, quarantine_path: str,
                       slides_path: str = ""):
    """The ingest of one input pattern: examples out, quarantine lines written to a file, and
    the slides' accounts to slides_path (when given)."""
    if options.manifest:  # its bad rows are in the layout records (validate_layout)
        manifest_path, folder = manifest.manifest_of_pattern(split_pattern)
        rows = manifest.rows_in_folder(manifest.read_manifest(root, manifest_path)[0], folder)
        paths = pipeline | "ManifestRows" >> beam.Create(rows)
    else:
        paths = (
            pipeline
            | "MatchFiles" >> fileio.MatchFiles(  # the root literally, the pattern as a pattern
                posixpath.join(layout.escape_root(root), split_pattern),
                empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW)
            | "Paths" >> beam.Map(lambda metadata: metadata.path))
    examples, quarantine, accounts = convert_paths(paths, root, options)
    # One small file of JSON lines: gathered into one element and written by one task (a
    # retried task rewrites the same content), instead of beam.io.WriteToText's four stages.
    _ = (quarantine
         | "GatherQuarantine" >> beam.combiners.ToList()
         | "WriteQuarantine" >> beam.Map(write_quarantine, quarantine_path))
    if slides_path:
        _ = (accounts
             | "GatherSlides" >> beam.combiners.ToList()
             | "WriteSlides" >> beam.Map(contract.write_slides, slides_path))
    return examples


def _pattern_tag(split_pattern: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in split_pattern).strip("_")


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _ImagesToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                     split_pattern: str) -> beam.pvalue.PCollection:
    options, _ = read_custom_config(exec_properties)
    quarantine_path = posixpath.join(exec_properties["_quarantine_dir"],
                                     f"{_pattern_tag(split_pattern)}.{QUARANTINE_FILE}")
    slides_dir = exec_properties.get("_slides_dir")
    slides_path = slides_dir and posixpath.join(
        slides_dir, f"{_pattern_tag(split_pattern)}.{contract.SLIDES_FILE}")
    return images_to_examples(pipeline, exec_properties[standard_component_specs.INPUT_BASE_KEY],
                              split_pattern, options, quarantine_path, slides_path)


class _GzipTFRecordSink(filebasedsink.FileBasedSink):
    """A Beam file sink of gzipped TFRecords written by tf.io.TFRecordWriter at a chosen zlib
    level (beam.io.WriteToTFRecord has no level). Beam still owns the temporary files, the shard
    names and the final rename; TensorFlow frames the records (CRCs in C++) and compresses."""

    def __init__(self, file_path_prefix: str, compression_level: int):
        super().__init__(file_path_prefix, coder=coders.BytesCoder(), file_name_suffix=".gz")
        self._compression_level = compression_level

    def open(self, temp_path: str) -> tf.io.TFRecordWriter:
        return tf.io.TFRecordWriter(temp_path, tf.io.TFRecordOptions(
            compression_type="GZIP", compression_level=self._compression_level))

    def write_encoded_record(self, file_handle: tf.io.TFRecordWriter, encoded_value: bytes):
        file_handle.write(encoded_value)


@beam.ptransform_fn
@beam.typehints.with_input_types(tf.train.Example)
def _WriteSplit(examples: beam.PCollection, output_split_path: str) -> beam.pvalue.PDone:
    """TFX's WriteSplit for tf.Examples (serialise, shuffle, write `data_tfrecord-*.gz`) with
    the gzip level SPLIT_GZIP_LEVEL. Its Reshuffle, which spreads the writes over a
    distributed runner's workers, is left out on the DirectRunner: there it would only carry
    every encoded image through the runner process once more (with several local workers,
    each writes the examples it converted)."""
    prefix = posixpath.join(output_split_path, write_split.DEFAULT_TF_RECORD_FILE_NAME)
    serialized = examples | "MaybeSerialize" >> beam.ParDo(write_split.MaybeSerialize())
    if not isinstance(examples.pipeline.runner, DirectRunner):
        serialized = serialized | "Shuffle" >> beam.Reshuffle()
    return serialized | "Write" >> beam.io.Write(_GzipTFRecordSink(prefix, SPLIT_GZIP_LEVEL))


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Checks the folder layout, runs the Beam ingest, records the quarantine and, with
    {SPAN} patterns, the previous span's label counts (for the drift check)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ImagesToExample

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: Dict[str, Any]
                               ) -> Dict[str, beam.pvalue.PCollection]:
        """TFX's, except for an output split config (hash buckets): its buckets become the
        splits' shares, and whole groups are assigned to splits by split_assignment (stratified
        by majority class, earlier groups kept) instead of by a hash of the group alone."""
        output_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output())
        if not output_config.split_config.splits:
            return super().GenerateExamplesByBeam(pipeline, exec_properties)
        input_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
        shares = [(split.name, split.hash_buckets) for split in output_config.split_config.splits]
        examples = pipeline | "InputToRecord" >> _ImagesToExample(  # pylint: disable=no-value-for-parameter
            exec_properties, input_config.splits[0].pattern)
        assignment = (
            examples
            | "GroupLabel" >> beam.Map(split_ledger.group_label, index_record)
            | "CountGroupLabels" >> beam.CombinePerKey(sum)
            | "GatherGroups" >> beam.combiners.ToList()
            | "AssignGroups" >> beam.Map(split_ledger.assign_groups, shares,
                                         exec_properties.get("_ledger", {}),
                                         exec_properties.get("_assignment_path", "")))
        names = [name for name, _ in shares]
        parts = examples | "SplitData" >> beam.Partition(
            lambda example, n, groups: names.index(groups[index_record(example)["group"]]),
            len(names), beam.pvalue.AsSingleton(assignment))
        return {name: parts[i] for i, name in enumerate(names)}

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        root = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        options, unresolved_pattern = read_custom_config(exec_properties)
        input_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
        layout_records = layout.validate_layouts(
            root, [split.pattern for split in input_config.splits], options).quarantined
        layout_records = list({(r.relative_path, r.reason): r for r in layout_records}.values())
        examples = output_dict[standard_component_specs.EXAMPLES_KEY][0]
        quarantine_dir = posixpath.join(examples.uri, QUARANTINE_DIR)
        tf.io.gfile.makedirs(quarantine_dir)
        write_quarantine(layout_records,
                         posixpath.join(quarantine_dir, f"layout.{QUARANTINE_FILE}"))
        ledger_path = exec_properties.get(contract.SPLIT_LEDGER_PARAMETER) or ""
        ledger = contract.read_ledger(ledger_path)
        self._write_examples(examples, input_config,
                             dict(exec_properties, _quarantine_dir=quarantine_dir,
                                  _slides_dir=posixpath.join(examples.uri, contract.SPLIT_DIR),
                                  _ledger={g: e["split"] for g, e in ledger.items()},
                                  _assignment_path=contract.assignment_path(examples.uri)))
        split_ledger.update_ledger(ledger_path, ledger, contract.read_assignment(examples.uri))

        tiled = contract.read_slides(examples.uri)  # a slide is a group: split by slide
        examples.set_int_custom_property(GROUPED_PROPERTY, int(options.grouped or bool(tiled)))
        records = read_quarantine(examples.uri)
        bad = [r for r in records if r.get("category") not in ingest.NOT_BAD]
        examples.set_int_custom_property(QUARANTINED_PROPERTY, len(bad))
        examples.set_int_custom_property(SKIPPED_PROPERTY, len(records) - len(bad))
        if bad:
            logging.warning("ImageExampleGen quarantined %d file(s); list in %s", len(bad),
                            quarantine_dir)
        span = exec_properties.get(example_gen_utils.SPAN_PROPERTY_NAME)
        previous = previous_span_class_counts(root, unresolved_pattern, span,
                                              options.group_folders)
        if previous is not None:
            examples.set_int_custom_property(PREVIOUS_SPAN_PROPERTY, previous[0])
            examples.set_string_custom_property(PREVIOUS_SPAN_COUNTS_PROPERTY,
                                                json.dumps(previous[1], sort_keys=True))

    def _write_examples(self, examples: types.Artifact, input_config: example_gen_pb2.Input,
                        exec_properties: Dict[str, Any]) -> None:
        """BaseExampleGenExecutor.Do with the splits written by _WriteSplit, not TFX's
        WriteSplit (which that Do calls directly): the same files, split names and
        payload/file format properties."""
        output_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output())
        file_format = write_split.to_file_format_str(  # raises for formats other than gzip
            exec_properties[standard_component_specs.OUTPUT_FILE_FORMAT_KEY])
        examples.split_names = artifact_utils.encode_split_names(
            example_gen_utils.generate_output_split_names(input_config, output_config))
        with self._make_beam_pipeline() as pipeline:
            for name, split in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                _ = split | f"WriteSplit[{name}]" >> _WriteSplit(
                    artifact_utils.get_split_uri([examples], name))
                _ = (split
                     | f"IndexRecord[{name}]" >> beam.Map(index_record)
                     | f"GatherIndex[{name}]" >> beam.combiners.ToList()
                     | f"WriteIndex[{name}]" >> beam.Map(
                         write_index, posixpath.join(examples.uri, INDEX_DIR,
                                                     f"{name}.{INDEX_FILE}")))
        examples_utils.set_payload_format(
            examples, exec_properties[standard_component_specs.OUTPUT_DATA_FORMAT_KEY])
        examples_utils.set_file_format(examples, file_format)


def previous_span_class_counts(root: str, pattern: str, span: Optional[int],
                               group_folders: bool = False
                               ) -> Optional[Tuple[int, Dict[str, int]]]:
    """(previous span, files per class) for a `{SPAN}` pattern; None without an earlier span.

    Counts files by listing (nothing is decoded), so it is cheap even for a large span.
    """
    prefix = layout.class_level_pattern(pattern, group_folders) if pattern else ""
    if span is None or not _SPAN_SPEC.search(prefix):
        return None
    regex = re.compile("^" + "".join(
        r"(\d+)" if _SPAN_SPEC.fullmatch(token) else
        "[^/]*" if token == "*" else "[^/]" if token == "?" else re.escape(token)
        for token in re.split(r"(\{SPAN(?::\d+)?\}|\*|\?)", prefix) if token) + "$")
    earlier = []
    for folder in tf.io.gfile.glob(posixpath.join(layout.escape_root(root),
                                                  _SPAN_SPEC.sub("*", prefix))):
        match = regex.match(ingest.relative_to_root(folder, root))
        if match and int(match.group(1)) < span:
            earlier.append(int(match.group(1)))
    if not earlier:
        return None
    previous = max(earlier)
    previous_pattern = example_gen_utils.get_pattern_for_span_version(
        pattern, is_match_span=True, is_match_date=False, is_match_version=False,
        span=previous, version=None)
    return previous, layout.count_files_by_class(root, previous_pattern, group_folders)

