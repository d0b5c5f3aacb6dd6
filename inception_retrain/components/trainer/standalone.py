"""The Trainer's inputs without a pipeline: gzipped tf.Examples and a Transform graph.

For benchmarks and tests that call train() directly on image files, with the same ingest code
and preprocessing_fn the pipeline runs (tf.Transform on Beam), so results carry over.
"""
import os
import tempfile
from typing import Dict, Sequence

import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from inception_retrain.components import features
from inception_retrain.components.image_example_gen import conversion, ingest
from inception_retrain.components.transform import preprocessing

RAW_FEATURE_SPEC = {features.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
                    features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.string)}


def write_examples(files_by_split: Dict[str, Sequence[str]], root: str,
                   out_dir: str) -> Dict[str, str]:
    """One gzipped TFRecord file of ingested examples per split; returns {split: path}.
    Files that the ingest quarantines are left out (and listed in the exception if all are)."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for split, files in files_by_split.items():
        paths[split] = os.path.join(out_dir, f"{split}.tfrecord.gz")
        with tf.io.TFRecordWriter(paths[split], options="GZIP") as writer:
            for path in files:
                example = conversion.example_or_quarantine(path, root, ingest.IngestOptions())
                if isinstance(example, tf.train.Example):
                    writer.write(example.SerializeToString())
    return paths


def write_transform_graph(train_examples: str, image_size: int, out_dir: str) -> str:
    """Analyses the training examples with the pipeline's preprocessing_fn and writes what TFX's
    Transform writes: the transform graph and the raw metadata."""
    rows = []
    for record in tf.data.TFRecordDataset([train_examples], compression_type="GZIP"):
        parsed = tf.io.parse_single_example(record, RAW_FEATURE_SPEC)
        rows.append({k: [v.numpy()[0]] for k, v in parsed.items()})
    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(RAW_FEATURE_SPEC))
    with tempfile.TemporaryDirectory() as temp, tft_beam.Context(temp_dir=temp):
        transform_fn = (rows, metadata) | tft_beam.AnalyzeDataset(
            lambda inputs: preprocessing.preprocessing_fn(inputs, {"image_size": image_size}))
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    metadata_io.write_metadata(metadata,
                               os.path.join(out_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
    return out_dir
