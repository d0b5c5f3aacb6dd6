"""Issue 13, items 7 and 10: configuration values that used to pass validation and fail later
(or silently) now stop before any work, with a message naming the key."""
import dataclasses
import os

import pytest

from inception_retrain.components.trainer.config import TrainConfig
from inception_retrain.pipeline import config as config_lib

FLOAT_KEYS = [f"{section}.{f.name}"
              for section, cls in (("data", config_lib.DataConfig),
                                   ("training", TrainConfig),
                                   ("evaluation", config_lib.EvaluationConfig))
              for f in dataclasses.fields(cls) if f.type in (float, "float")]


def _load(key: str, value):
    section, name = key.split(".")
    return config_lib.load(overrides={section: {name: value}})


def test_every_section_has_float_keys():
    assert {"data.max_class_ratio", "training.max_activation_cache_gb",
            "evaluation.accuracy_floor"} <= set(FLOAT_KEYS)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "nan", "inf"])
@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_nan_and_inf_are_refused_for_every_float_key(key, value):
    """Item 10: data.max_class_ratio=nan turned the rule off silently (NaN passes every
    comparison); training.max_activation_cache_gb=nan likewise."""
    with pytest.raises(config_lib.ConfigError, match=f"{key} must be a finite number"):
        _load(key, value)


def test_nan_is_refused_by_train_config_itself():
    """Item 10: the Trainer builds TrainConfig from its custom_config, without pipeline.config."""
    with pytest.raises(ValueError, match="training.max_activation_cache_gb must be a finite"):
        TrainConfig(max_activation_cache_gb=float("nan"))


@pytest.mark.parametrize("key, value, expected", [
    ("training.seed", -1, "training.seed must be in 0..2**32-1"),
    ("training.seed", 2 ** 32, "training.seed must be in 0..2**32-1"),
    ("training.image_size", 100000, "training.image_size must be at most 1024"),
    ("training.image_size", 1025, "training.image_size must be at most 1024"),
])
def test_seed_and_image_size_out_of_range_are_refused(key, value, expected):
    """Item 10: training.seed=-1 failed in the Trainer after the whole upstream had run;
    training.image_size=100000 was accepted."""
    with pytest.raises(config_lib.ConfigError, match=expected.replace("*", r"\*")):
        _load(key, value)


def test_seed_and_image_size_bounds_are_accepted():
    assert _load("training.seed", 0).training.seed == 0
    assert _load("training.seed", 2 ** 32 - 1).training.seed == 2 ** 32 - 1
    assert _load("training.image_size", 1024).training.image_size == 1024


@pytest.mark.parametrize("text, key, lines", [
    ("training:\n  batch_size: 8\ntraining:\n  phase1_epochs: 3\n", "training", (1, 3)),
    ("training:\n  batch_size: 8\n  seed: 1\n  batch_size: 16\n", "batch_size", (2, 4)),
    ("work_dir: a\nwork_dir: b\n", "work_dir", (1, 2)),
    ("data: {root: a, root: b}\n", "root", (1, 1)),
])
def test_duplicate_yaml_keys_are_refused_naming_key_and_lines(tmp_path, text, key, lines):
    """Item 10: a second section or key with the same name replaced the first silently."""
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    with pytest.raises(config_lib.ConfigError) as err:
        config_lib.load(str(path))
    message = str(err.value)
    assert str(path) in message
    assert f"duplicate key {key!r} (first on line {lines[0]}, again on line {lines[1]})" in message


def test_a_non_utf8_config_file_is_a_config_error(tmp_path):
    """Item 10: a Latin-1 config file ended in a UnicodeDecodeError traceback."""
    path = tmp_path / "pipeline.yaml"
    path.write_bytes("data:\n  root: /data/caf\u00e9\n".encode("latin-1"))
    with pytest.raises(config_lib.ConfigError, match="is not UTF-8 text: byte b'\\\\xe9'"):
        config_lib.load(str(path))


def test_tilde_is_expanded_in_yaml_paths(tmp_path, monkeypatch):
    """Item 10: `~` in work_dir, serving_dir, data.root and training.base_weights was taken
    as a folder named `~` below the working directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "pipeline.yaml"
    path.write_text("work_dir: ~/runs\nserving_dir: ~/serving\ndata:\n  root: ~/images\n"
                    "training:\n  base_weights: ~/w.h5\n")
    config = config_lib.load(str(path), base_dir=str(tmp_path / "cwd"))
    home = str(tmp_path / "home")
    assert config.work_dir == os.path.join(home, "runs")
    assert config.serving_dir == os.path.join(home, "serving")
    assert config.data.root == os.path.join(home, "images")
    assert config.training.base_weights == os.path.join(home, "w.h5")


@pytest.mark.parametrize("folders, expected", [
    (["train", "train", "test"], "the train folder 'train' and the eval folder 'train' are "
                                 "the same folder"),
    (["train", "val", "./val/"], "the eval folder 'val' and the test folder './val/' are the "
                                 "same folder"),
    (["all", "all/val"], "the train folder 'all' and the eval folder 'all/val' are nested"),
    (["train", "."], "the eval folder must be a folder below the data root"),
    (["train", "../val"], "the eval folder must be a folder below the data root"),
])
def test_overlapping_split_folders_are_refused(folders, expected):
    """Item 7: split_folders=[train, train, test] was accepted; the model was evaluated on its
    training images and blessed on them."""
    with pytest.raises(config_lib.ConfigError) as err:
        config_lib.load(overrides={"data": {"split_folders": folders}})
    assert "data.split_folders" in str(err.value) and expected in str(err.value)


def test_distinct_split_folders_pass():
    config = config_lib.load(overrides={"data": {"split_folders": ["train", "val", "test"]}})
    assert config.data.split_folders == ("train", "val", "test")
