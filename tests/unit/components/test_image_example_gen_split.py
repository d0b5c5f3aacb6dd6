"""Splits and spans through the real driver and executor: hash splits are stable and sized by
the configured ratios, the user's own split folders are honoured, a new folder is a new span."""
from conftest import read_examples
from inception_retrain.components.image_example_gen import executor
from test_image_ingest import encode, two_tone
from test_image_example_gen_executor import paths_of


def write_images(root, counts):
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / name / f"{name}_{i:03d}.png").write_bytes(encode(two_tone((8, 8)), "PNG"))


def ingest(data_root, out, **kwargs):
    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.standalone import run_example_gen

    return run_example_gen(ImageExampleGen(str(data_root), **kwargs), str(out))


def split_paths(artifact):
    return {split: paths_of(examples) for split, examples in read_examples(artifact.uri).items()}


def test_split_follows_ratios_per_class_and_never_moves_earlier_images(tmp_path):
    ledger = str(tmp_path / "root" / "split_ledger.json")
    write_images(tmp_path / "data", {"a": 100, "b": 60})
    first = split_paths(ingest(tmp_path / "data", tmp_path / "out1", split_ledger=ledger,
                               splits=(("train", 50), ("eval", 50))))
    assert sorted(first) == ["eval", "train"]
    assert sorted(p.split("/")[0] for p in first["eval"]) == ["a"] * 50 + ["b"] * 30
    write_images(tmp_path / "data", {"a": 130, "b": 130})   # 100 new images arrive
    second = split_paths(ingest(tmp_path / "data", tmp_path / "out2", split_ledger=ledger,
                                splits=(("train", 50), ("eval", 50))))
    for split in ("train", "eval"):
        assert set(first[split]) <= set(second[split])
    assert sum(map(len, second.values())) == 260
    assert len(second["eval"]) == 130          # the new images fill each class's shares


def test_users_split_folders_are_honoured(tmp_path):
    write_images(tmp_path / "data" / "train", {"a": 4, "b": 4})
    write_images(tmp_path / "data" / "val", {"a": 2, "b": 2})
    write_images(tmp_path / "data" / "test", {"a": 1, "b": 1})
    result = split_paths(ingest(tmp_path / "data", tmp_path / "out",
                                split_folders=("train", "val", "test")))
    assert {split: len(paths) for split, paths in result.items()} == {
        "train": 8, "eval": 4, "test": 2}
    assert all(p.startswith("val/") for p in result["eval"])


def test_newest_span_is_ingested_and_previous_span_counted(tmp_path):
    write_images(tmp_path / "data" / "span-1", {"a": 6, "b": 2})
    write_images(tmp_path / "data" / "span-2", {"a": 3, "b": 3})
    artifact = ingest(tmp_path / "data", tmp_path / "out", input_pattern="span-{SPAN}/*/*")
    assert artifact.span == 2
    paths = [p for split in split_paths(artifact).values() for p in split]
    assert len(paths) == 6 and all(p.startswith("span-2/") for p in paths)
    assert artifact.get_int_custom_property(executor.PREVIOUS_SPAN_PROPERTY) == 1
    assert artifact.get_string_custom_property(executor.PREVIOUS_SPAN_COUNTS_PROPERTY) == \
        '{"a": 6, "b": 2}'


def test_first_span_has_no_previous(tmp_path):
    write_images(tmp_path / "data" / "span-7", {"a": 2, "b": 2})
    artifact = ingest(tmp_path / "data", tmp_path / "out", input_pattern="span-{SPAN}/*/*")
    assert artifact.span == 7
    assert executor.PREVIOUS_SPAN_PROPERTY not in artifact.mlmd_artifact.custom_properties
