"""The real ImageExampleGen executor on a folder holding every bad case: exactly the expected
quarantine list, every good file arrives in the output TFRecords, counts on the artifact; the
split files are the gzipped TFRecords that TFX's own WriteSplit writes, readable as
downstream components read them."""
import gzip
import os

import pytest

from conftest import read_examples
from inception_retrain.components import features
from inception_retrain.components.image_example_gen import executor, ingest
from test_image_ingest import MESSY_OPTIONS, messy_folder


def paths_of(examples):
    return sorted(e.features.feature[features.PATH_KEY].bytes_list.value[0].decode()
                  for e in examples)


# One in-process worker (no Reshuffles, see executor.one_local_worker), two threads and two
# worker processes (paths spread over them; each writes the examples it converted).
ONE_WORKER = []
TWO_WORKERS = ["--direct_running_mode=multi_threading", "--direct_num_workers=2"]
TWO_PROCESSES = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


@pytest.mark.parametrize("beam_args", [ONE_WORKER, TWO_WORKERS, TWO_PROCESSES],
                         ids=["1-worker", "2-threads", "2-processes"])
def test_messy_folder_every_file_accounted_for(tmp_path, beam_args):
    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.standalone import run_example_gen

    good, expected = messy_folder(tmp_path / "data")
    artifact = run_example_gen(ImageExampleGen(str(tmp_path / "data"), options=MESSY_OPTIONS),
                               str(tmp_path / "out"), beam_args)

    by_split = read_examples(artifact.uri)
    assert sorted(by_split) == ["eval", "test", "train"]
    assert sorted(p for split in by_split.values() for p in paths_of(split)) == good
    records = executor.read_quarantine(artifact.uri)
    assert {r["relative_path"]: r["category"] for r in records} == expected
    assert all(r["reason"] for r in records)
    bad = sum(1 for c in expected.values() if c != ingest.HIDDEN)
    assert artifact.get_int_custom_property(executor.QUARANTINED_PROPERTY) == bad
    assert artifact.get_int_custom_property(executor.SKIPPED_PROPERTY) == 1
    sizes = {feature_path: (e.features.feature[features.WIDTH_KEY].int64_list.value[0],
                            e.features.feature[features.HEIGHT_KEY].int64_list.value[0])
             for split in by_split.values() for e in split
             for feature_path in [e.features.feature[features.PATH_KEY].bytes_list.value[0]]}
    assert sizes[b"daisy/big.png"] == (64, 32)  # downscaled to max_side


def test_layout_error_stops_the_executor_before_beam(tmp_path):
    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.standalone import run_example_gen

    good, _ = messy_folder(tmp_path / "data")
    with pytest.raises(ingest.LayoutError, match="hidden files"):
        run_example_gen(ImageExampleGen(str(tmp_path / "data")), str(tmp_path / "out"))
    assert not (tmp_path / "out" / "Split-train").exists()


@pytest.mark.parametrize("argv, one", [
    ([], True),
    (["--direct_running_mode=multi_processing"], True),
    (["--direct_num_workers=2"], False),
    (["--direct_num_workers=0"], False),  # 0: as many workers as cores
    (["--runner=PortableRunner"], False),
])
def test_reshuffles_are_left_out_only_for_one_direct_runner_worker(argv, one):
    import apache_beam as beam

    assert executor.one_local_worker(beam.Pipeline(argv=argv)) is one


def test_splits_are_gzip_tfrecords_that_tf_data_and_tfxio_read(tmp_path):
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to
    from tfx.components.util import tfxio_utils

    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.standalone import run_example_gen

    good, _ = messy_folder(tmp_path / "data")
    artifact = run_example_gen(ImageExampleGen(str(tmp_path / "data"), options=MESSY_OPTIONS),
                               str(tmp_path / "out"))

    by_split = read_examples(artifact.uri)  # tf.data, compression_type="GZIP"
    assert sorted(p for split in by_split.values() for p in paths_of(split)) == good
    for split in by_split:
        for path in (tmp_path / "out" / f"Split-{split}").glob("*.gz"):
            stored = path.read_bytes()
            # A whole gzip member (Python checks its CRC and length), written at level 0
            # (executor.SPLIT_GZIP_LEVEL): stored blocks, no smaller than the records.
            assert len(stored) >= len(gzip.decompress(stored))
    # StatisticsGen, Transform and Evaluator read through TFXIO, chosen from the artifact's
    # payload_format and file_format properties.
    with beam.Pipeline() as pipeline:
        for split, examples in by_split.items():
            tfxio = tfxio_utils.get_split_tfxio([artifact], split, ["ImageExampleGenTest"])
            paths = (pipeline
                     | f"Read[{split}]" >> tfxio.BeamSource()
                     | f"Paths[{split}]" >> beam.FlatMap(
                         lambda batch: [p[0].decode() for p in
                                        batch.column(features.PATH_KEY).to_pylist()]))
            assert_that(paths, equal_to(paths_of(examples)), label=f"Check[{split}]")


def test_artifact_matches_tfx_own_example_gen_write(tmp_path):
    """The executor writes its splits itself (for the gzip level); TFX's
    BaseExampleGenExecutor.Do, run with the same conversion, gives the same artifact: split
    names, payload and file format properties, file names and records."""
    from google.protobuf import message
    from tfx.components.example_gen import base_example_gen_executor, driver
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts, standard_component_specs
    from tfx.utils import proto_utils

    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.standalone import run_example_gen

    messy_folder(tmp_path / "data")
    component = ImageExampleGen(str(tmp_path / "data"), options=MESSY_OPTIONS)
    ours = run_example_gen(component, str(tmp_path / "ours"))

    exec_properties = driver.FileBasedDriver(None).resolve_exec_properties({
        key: proto_utils.proto_to_json(value) if isinstance(value, message.Message) else value
        for key, value in component.exec_properties.items() if value is not None}, None, None)
    tfx_written = standard_artifacts.Examples()
    tfx_written.uri = str(tmp_path / "tfx")
    os.makedirs(tmp_path / "tfx" / "quarantine")
    base_example_gen_executor.BaseExampleGenExecutor.Do(
        executor.Executor(base_beam_executor.BaseBeamExecutor.Context()), {},
        {standard_component_specs.EXAMPLES_KEY: [tfx_written]},
        dict(exec_properties, _quarantine_dir=str(tmp_path / "tfx" / "quarantine")))

    assert ours.split_names == tfx_written.split_names
    for name in ("payload_format", "file_format"):
        assert (ours.get_string_custom_property(name)
                == tfx_written.get_string_custom_property(name) != "")
    for split in ("train", "eval", "test"):
        assert (sorted(os.listdir(tmp_path / "ours" / f"Split-{split}"))
                == sorted(os.listdir(tmp_path / "tfx" / f"Split-{split}")))

    def records(uri):
        return {split: sorted(e.SerializeToString(deterministic=True) for e in examples)
                for split, examples in read_examples(uri).items()}

    assert records(ours.uri) == records(tfx_written.uri)
