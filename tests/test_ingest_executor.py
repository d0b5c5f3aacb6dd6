"""The real ImageExampleGen executor on a folder holding every bad case: exactly the expected
quarantine list, every good file arrives in the output TFRecords, counts on the artifact."""
import pytest

from components import features
from components.image_example_gen import executor, ingest
from test_ingest import MESSY_OPTIONS, messy_folder


def read_examples(examples_uri: str):
    """{split: [tf.Example]} from an Examples artifact's gzipped TFRecords."""
    import tensorflow as tf

    out = {}
    for split_dir in sorted(tf.io.gfile.glob(f"{examples_uri}/Split-*")):
        files = tf.io.gfile.glob(f"{split_dir}/*.gz")
        out[split_dir.rsplit("Split-", 1)[1]] = [
            tf.train.Example.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    return out


def paths_of(examples):
    return sorted(e.features.feature[features.PATH_KEY].bytes_list.value[0].decode()
                  for e in examples)


def test_messy_folder_every_file_accounted_for(tmp_path):
    from components.image_example_gen.component import ImageExampleGen
    from components.image_example_gen.standalone import run_example_gen

    good, expected = messy_folder(tmp_path / "data")
    artifact = run_example_gen(ImageExampleGen(str(tmp_path / "data"), options=MESSY_OPTIONS),
                               str(tmp_path / "out"))

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
    from components.image_example_gen.component import ImageExampleGen
    from components.image_example_gen.standalone import run_example_gen

    good, _ = messy_folder(tmp_path / "data")
    with pytest.raises(ingest.LayoutError, match="hidden files"):
        run_example_gen(ImageExampleGen(str(tmp_path / "data")), str(tmp_path / "out"))
    assert not (tmp_path / "out" / "Split-train").exists()
