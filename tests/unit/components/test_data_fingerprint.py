"""DataFingerprint (the kfp target's stand-in for ExampleGen's driver): the fingerprint of the
files ImageExampleGen will read changes when they change, and only then."""
import os

from conftest import write_class_images
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from inception_retrain.components.data_fingerprint import executor
from inception_retrain.components.image_example_gen import component


def run_executor(root, tmp_path, **layout) -> str:
    """Through the executor as a container runs it: exec properties as the spec's strings."""
    output = standard_artifacts.String()
    output.uri = str(tmp_path / f"fingerprint-{len(os.listdir(tmp_path))}")
    executor.Executor().Do({}, {executor.FINGERPRINT_KEY: [output]}, {
        "input_base": str(root),
        "input_config": proto_utils.proto_to_json(component.input_config(**layout))})
    return output.read()


def test_unchanged_files_give_the_same_fingerprint_and_any_change_a_new_one(tmp_path):
    root = write_class_images(tmp_path / "data [1]", {"daisy": 3, "roses": 3})  # taken literally
    (tmp_path / "out").mkdir()
    first = run_executor(root, tmp_path / "out")
    assert "num_files:6" in first, first
    assert run_executor(root, tmp_path / "out") == first
    write_class_images(root, {"daisy": 4})  # one more image (and the others rewritten)
    grown = run_executor(root, tmp_path / "out")
    assert grown != first and "num_files:7" in grown
    os.truncate(root / "roses" / "roses_0.jpg", 100)  # same files, one of another size
    assert run_executor(root, tmp_path / "out") != grown


def test_split_folders_are_fingerprinted_split_by_split(tmp_path):
    root = tmp_path / "images"
    write_class_images(root / "train", {"daisy": 3, "roses": 3})
    write_class_images(root / "val", {"daisy": 2, "roses": 2})
    (tmp_path / "out").mkdir()
    value = run_executor(root, tmp_path / "out", split_folders=("train", "val"))
    assert "split:train,num_files:6" in value and "split:eval,num_files:4" in value, value
    # files outside the split folders are not read by ImageExampleGen, nor fingerprinted
    write_class_images(root / "unused", {"daisy": 2})
    assert run_executor(root, tmp_path / "out", split_folders=("train", "val")) == value
