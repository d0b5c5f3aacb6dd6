"""The data components on Beam's PortableRunner with an external worker pool on loopback.

ImageExampleGen, StatisticsGen and Transform (with ImportSchemaGen for the schema) run twice on
the same images: on the DirectRunner, and on the PortableRunner (in-process job service,
`apache_beam.runners.worker.worker_pool_main` on 127.0.0.1 starting the SDK workers). This is
how a Flink or Spark job server runs them, minus the cluster: every stage goes through the
Fn API to separate worker processes. The outputs must be the same: the same examples, the same
statistics, the same vocabulary and transformed features.
"""
import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tensorflow as tf
from tfx import v1 as tfx

from inception_retrain.components import features
from inception_retrain.components.image_example_gen.component import ImageExampleGen
from inception_retrain.pipeline import config as config_lib, default_dataset
from inception_retrain.pipeline import pipeline as pipeline_lib

IMAGE_SIZE = 96


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def worker_pool(env_with_legacy_keras):
    """The external worker pool; SDK workers start with `python` from PATH, the venv's first."""
    port = _free_port()
    env = dict(env_with_legacy_keras,
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    pool = subprocess.Popen([sys.executable, "-m",
                             "apache_beam.runners.worker.worker_pool_main",
                             f"--service_port={port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert pool.poll() is None, "the worker pool exited"
            time.sleep(0.5)
    yield f"localhost:{port}"
    pool.terminate()
    pool.wait(timeout=30)


def _run(root: Path, data_root: str, beam_args):
    config = config_lib.load(overrides={"work_dir": str(root), "data": {"root": data_root}})
    arguments = pipeline_lib.dag_arguments(config, data_root,
                                           pipeline_lib.default_schema_path())
    data = arguments["data"]
    example_gen = ImageExampleGen(input_base=data_root, splits=data.splits,
                                  input_pattern=data.input_pattern,
                                  split_folders=data.split_folders,
                                  options=data.ingest_options())
    statistics = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema = tfx.components.ImportSchemaGen(schema_file=arguments["paths"].schema_path)
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"], schema=schema.outputs["schema"],
        preprocessing_fn=pipeline_lib.PREPROCESSING_FN, materialize=False,
        disable_statistics=True, splits_config=tfx.proto.SplitsConfig(analyze=["train"]),
        custom_config={"image_size": IMAGE_SIZE})
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name="portable", pipeline_root=str(root / "pipeline_root"),
        components=[example_gen, statistics, schema, transform], enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(root / "metadata.sqlite")),
        beam_pipeline_args=list(beam_args)))
    return root / "pipeline_root"


def _output(pipeline_root: Path, component: str, name: str) -> Path:
    (path,) = (pipeline_root / component / name).iterdir()  # one execution
    return path


def _examples(pipeline_root: Path):
    """{split: sorted digests of serialized examples} and the lines of the split index and
    quarantine files: the same sets, whatever the order."""
    out = {}
    examples = _output(pipeline_root, "ImageExampleGen", "examples")
    for split_dir in sorted(examples.glob("Split-*")):
        files = [str(f) for f in split_dir.iterdir()]
        # Canonical bytes: protobuf does not fix the order it writes a map's entries in.
        out[split_dir.name] = sorted(
            hashlib.sha256(tf.train.Example.FromString(r.numpy()).SerializeToString(
                deterministic=True)).hexdigest()
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    for side_file in sorted(examples.glob("*/*.jsonl")):  # the split index and quarantine
        out[str(side_file.relative_to(examples))] = sorted(side_file.read_text().splitlines())
    return out


def _statistics(pipeline_root: Path):
    """Per split: example count, and per feature its presence and value counts and, for
    strings, unique count and the top values. Histograms and quantiles are sketches whose
    bucket edges may depend on the order elements arrive in; they are left out."""
    from tensorflow_metadata.proto.v0 import statistics_pb2
    from tfx.utils import io_utils

    out = {}
    for split_dir in sorted(_output(pipeline_root, "StatisticsGen", "statistics").iterdir()):
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        stats.ParseFromString(io_utils.read_bytes_file(str(split_dir / "FeatureStats.pb")))
        (dataset,) = stats.datasets
        feats = {}
        for feature in dataset.features:
            which = feature.WhichOneof("stats")
            common = (feature.string_stats.common_stats if which == "string_stats"
                      else feature.num_stats.common_stats)
            entry = [common.num_non_missing, common.num_missing, common.min_num_values,
                     common.max_num_values, round(common.avg_num_values, 6)]
            if which == "string_stats":
                entry += [feature.string_stats.unique,
                          sorted((v.value, v.frequency) for v in feature.string_stats.top_values)]
            else:
                entry += [feature.num_stats.min, feature.num_stats.max,
                          round(feature.num_stats.mean, 6)]
            feats[feature.path.step[0]] = entry
        out[split_dir.name] = (dataset.num_examples, feats)
    return out


def _transformed(pipeline_root: Path, examples: list):
    """The vocabulary and the transformed features of the same examples."""
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(str(_output(pipeline_root, "Transform", "transform_graph")))
    vocabulary = output.vocabulary_by_name(features.LABEL_VOCABULARY)
    raw = tf.io.parse_example(tf.constant(examples), output.raw_feature_spec())
    xf = output.transform_raw_features(raw, drop_unused_features=True)
    return vocabulary, {k: v.numpy() for k, v in xf.items()}


def test_data_components_on_the_portable_runner_match_the_direct_runner(tmp_path, worker_pool):
    data_root = default_dataset.ensure_default_dataset(str(tmp_path / "images"),
                                                       images_per_class=6)
    direct = _run(tmp_path / "direct", data_root, [])
    portable = _run(tmp_path / "portable", data_root, [
        "--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=EXTERNAL",
        f"--environment_config={worker_pool}"])

    assert _examples(portable) == _examples(direct)
    assert _statistics(portable) == _statistics(direct)
    train_dir = _output(direct, "ImageExampleGen", "examples") / "Split-train"
    records = [r.numpy() for r in tf.data.TFRecordDataset(
        [str(f) for f in train_dir.iterdir()], compression_type="GZIP")][:8]
    direct_vocabulary, direct_xf = _transformed(direct, records)
    portable_vocabulary, portable_xf = _transformed(portable, records)
    assert portable_vocabulary == direct_vocabulary
    assert sorted(portable_xf) == sorted(direct_xf)
    for key, value in direct_xf.items():
        assert (portable_xf[key] == value).all(), key
