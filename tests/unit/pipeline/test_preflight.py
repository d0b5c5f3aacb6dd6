"""The run's preflight checks the layout the configuration describes (spans, split folders,
hidden-file policy), before TFX is imported."""
from pathlib import Path

import pytest

from inception_retrain.components.image_example_gen import ingest, layout
from inception_retrain.pipeline import config as config_lib
from inception_retrain.pipeline import local_runner


def _classes(parent: Path, classes=("a", "b")) -> None:
    for name in classes:
        (parent / name).mkdir(parents=True)
        (parent / name / "0.png").write_bytes(b"not checked by the layout")


def _config(tmp_path: Path, root: Path, **data) -> config_lib.PipelineConfig:
    return config_lib.load(overrides={"work_dir": str(tmp_path / "work"),
                                      "data": dict(data, root=str(root))})


def test_span_folders_pass_with_a_span_pattern_and_stop_without(tmp_path):
    root = tmp_path / "data"
    _classes(root / "span-1")
    _classes(root / "span-2", ("a", "b", "c"))

    config = _config(tmp_path, root, input_pattern="span-{SPAN}/*/*")
    assert local_runner.preflight(config) == str(root)
    with pytest.raises(ingest.LayoutError, match="span-1"):  # span folders are not classes
        local_runner.preflight(_config(tmp_path, root))


def test_a_broken_older_span_is_named(tmp_path):
    root = tmp_path / "data"
    _classes(root / "span-1")
    _classes(root / "span-2")
    (root / "span-1" / "stray.jpg").write_bytes(b"x")

    with pytest.raises(ingest.LayoutError, match="span-1.*in no class: stray.jpg"):
        local_runner.preflight(_config(tmp_path, root, input_pattern="span-{SPAN:2}/*/*"))


def test_every_split_folder_is_checked(tmp_path):
    root = tmp_path / "data"
    _classes(root / "train")
    _classes(root / "val")
    config = _config(tmp_path, root, split_folders=("train", "val"))
    assert local_runner.preflight(config) == str(root)

    (root / "val" / "b" / "0.png").unlink()
    with pytest.raises(ingest.LayoutError, match=r"val/b.*holds no image files"):
        local_runner.preflight(config)


def test_hidden_files_follow_the_configured_policy(tmp_path):
    root = tmp_path / "data"
    _classes(root)
    (root / "a" / ".DS_Store").write_bytes(b"x")

    with pytest.raises(ingest.LayoutError, match="hidden files"):
        local_runner.preflight(_config(tmp_path, root))
    assert local_runner.preflight(_config(tmp_path, root, hidden_files="skip")) == str(root)


@pytest.mark.parametrize("pattern,expected", [
    ("*/*", "*/*"),
    ("span-{SPAN}/*/*", "span-*/*/*"),
    ("{YYYY}-{MM}-{DD}/v{VERSION:3}/*/*", "*-*-*/v*/*/*"),
])
def test_any_span_widens_every_spec(pattern, expected):
    assert layout.any_span(pattern) == expected
