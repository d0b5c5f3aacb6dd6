"""Configuration: every bad value stops before any work with a message naming the key, from a
YAML file, from --set and through the command line; `config --example` is complete and loads
back as the defaults."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from inception_retrain.cli import main as cli
from inception_retrain.pipeline import config as config_lib
from inception_retrain.pipeline import config_reference

# (overrides, text the message must hold): the key, and what is wrong with it.
BAD_VALUES = [
    ({"trainig": {"batch_size": 8}}, ["unknown key(s): trainig", "known: ", "training"]),
    ({"training": {"epochs": 3}}, ["unknown key(s): training.epochs", "training.phase1_epochs"]),
    ({"data": {"root": "x", "rot": "y"}}, ["unknown key(s): data.rot"]),
    ({"training": {"batch_size": "big"}}, ["training.batch_size must be a number", "'big'"]),
    ({"training": {"batch_size": 2.5}}, ["training.batch_size must be an integer", "2.5"]),
    ({"training": {"batch_size": True}}, ["training.batch_size must be an integer", "True"]),
    ({"training": {"dropout": [0.1]}}, ["training.dropout must be a number", "[0.1]"]),
    ({"enable_cache": "maybe"}, ["enable_cache must be true or false", "'maybe'"]),
    ({"model_name": 7}, ["model_name must be a string", "7"]),
    ({"beam_args": 3}, ["beam_args must be a list of strings", "3"]),
    ({"data": "flowers/"}, ["data must be a section", "'flowers/'"]),
    ({"data": {"train_percent": 80}}, ["data.train_percent + eval_percent + test_percent",
                                       "add up to 100", "(80, 20, 10)"]),
    ({"data": {"train_percent": 90, "eval_percent": 0}},
     ["data.train_percent and data.eval_percent must be above 0"]),
    ({"data": {"max_quarantined_fraction": 1.5}},
     ["data.max_quarantined_fraction must be in [0, 1]", "1.5"]),
    ({"data": {"on_imbalance": "ignore"}}, ["data.on_imbalance must be one of fail, warn",
                                            "'ignore'"]),
    ({"data": {"split_folders": ["train"]}}, ["data.split_folders names the train, eval",
                                              "('train',)"]),
    ({"training": {"phase1_epochs": 0}}, ["training.phase1_epochs must be at least 1"]),
    ({"training": {"image_size": 50}}, ["training.image_size must be at least 75", "50"]),
    ({"training": {"unfreeze_blocks": 12}}, ["training.unfreeze_blocks must be 0..11", "12"]),
    ({"training": {"phase2_learning_rate": 0}},
     ["training.phase2_learning_rate must be in (0, 1)"]),
    ({"training": {"augment_flip": True}}, ["training.feature_cache must be false when "
                                            "augmentation is on"]),
    ({"training": {"stain_jitter": 0.05}}, ["training.feature_cache must be false when "
                                            "augmentation is on"]),
    ({"training": {"stain_jitter": 1.5, "feature_cache": False}},
     ["training.stain_jitter must be in [0, 1)", "1.5"]),
    ({"training": {"stain_normalization": "macenko"}},
     ["training.stain_normalization must be one of none, reinhard", "'macenko'"]),
    ({"training": {"lr_schedule": "step"}}, ["training.lr_schedule must be 'cosine' or "
                                             "'constant'", "'step'"]),
    ({"evaluation": {"accuracy_floor": 1.5}}, ["evaluation.accuracy_floor must be in [0, 1]",
                                               "1.5"]),
    ({"evaluation": {"baseline": "best"}}, ["evaluation.baseline must be one of served, "
                                            "latest_blessed, none", "'best'"]),
    ({"keep_versions": 0}, ["keep_versions must be at least 1", "0"]),
    ({"pipeline_name": "my pipeline"}, ["pipeline_name may hold only letters", "'my pipeline'"]),
]


@pytest.mark.parametrize("overrides, expected", BAD_VALUES,
                         ids=[str(case[0]) for case in BAD_VALUES])
def test_bad_values_stop_with_a_message_naming_the_key(overrides, expected):
    with pytest.raises(config_lib.ConfigError) as err:
        config_lib.load(overrides=overrides)
    for text in expected:
        assert text in str(err.value)


@pytest.mark.parametrize("overrides, expected", BAD_VALUES[:6] + BAD_VALUES[11:13],
                         ids=[str(case[0]) for case in BAD_VALUES[:6] + BAD_VALUES[11:13]])
def test_the_same_values_in_a_yaml_file_give_the_same_messages(tmp_path, overrides, expected):
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(overrides))
    with pytest.raises(config_lib.ConfigError) as err:
        config_lib.load(str(path))
    for text in expected:
        assert text in str(err.value)


@pytest.mark.parametrize("assignment, expected", [
    ("training.batch_size", "--set expects key=value"),
    ("=3", "--set expects key=value"),
    ("training.batch_size=abc", "training.batch_size must be a number (int), got 'abc'"),
    ("training.use_class_weights=perhaps", "training.use_class_weights must be true or false"),
    ("training.phase1_epochs=-1", "training.phase1_epochs must be 0 or more, got -1"),
    ("evaluation.top_k=0", "evaluation.top_k must be at least 1, got 0"),
    ("data.split_folders=[train, val", "data.split_folders: '[train, val' is not a list"),
    ("data.split_folders=[train, [val]]", "data.split_folders must be a list of strings"),
])
def test_set_flags_are_parsed_and_checked(assignment, expected):
    with pytest.raises(config_lib.ConfigError) as err:
        config_lib.load(overrides=config_lib.parse_overrides([assignment]))
    assert expected in str(err.value)


def test_set_flags_convert_strings_to_the_field_types():
    config = config_lib.load(overrides=config_lib.parse_overrides([
        "training.batch_size=8", "training.use_class_weights=false",
        "data.split_folders=train val", "evaluation.accuracy_floor=0.75"]))
    assert config.training.batch_size == 8
    assert config.training.use_class_weights is False
    assert config.data.split_folders == ("train", "val")
    assert config.evaluation.accuracy_floor == 0.75


@pytest.mark.parametrize("flag", ["beam_args=[--direct_num_workers=2, --direct_running_mode=x]",
                                  "beam_args=--direct_num_workers=2 --direct_running_mode=x"])
def test_list_flags_take_the_config_file_syntax_or_spaces(flag):
    config = config_lib.load(overrides=config_lib.parse_overrides([flag]))
    assert config.beam_args == ("--direct_num_workers=2", "--direct_running_mode=x")


@pytest.mark.parametrize("content, expected", [
    ("training: [1, 2\n", "is not valid YAML"),
    ("- a\n- b\n", "must hold a mapping of keys"),
])
def test_unreadable_config_files_are_named(tmp_path, content, expected):
    path = tmp_path / "broken.yaml"
    path.write_text(content)
    with pytest.raises(config_lib.ConfigError) as err:
        config_lib.load(str(path))
    assert str(path) in str(err.value) and expected in str(err.value)


def test_missing_config_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(config_lib.ConfigError) as err:
        config_lib.load(str(missing))
    assert "cannot read config file" in str(err.value) and str(missing) in str(err.value)


def test_the_command_line_stops_with_exit_code_2_and_the_message(capsys, tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text("training:\n  phase1_epochs: 3\n  batch_sise: 8\n")
    assert cli.main(["config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error: unknown key(s): training.batch_sise")
    assert cli.main(["run", "--config", str(path), "--work-dir", str(tmp_path / "w")]) == 2
    assert "training.batch_sise" in capsys.readouterr().err
    assert not (tmp_path / "w").exists(), "a bad config must stop the run before any work"


def test_config_command_prints_the_resolved_values(capsys, tmp_path):
    assert cli.main(["config", "--work-dir", str(tmp_path), "--set",
                     "training.phase1_epochs=3"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)  # JSON is YAML
    assert printed["training"]["phase1_epochs"] == 3
    assert printed["work_dir"] == str(tmp_path)


def test_every_key_has_a_description_and_no_stale_ones_remain():
    keys = config_reference.all_keys()
    assert sorted(keys) == sorted(config_reference.DESCRIPTIONS), (
        "pipeline/config_reference.py must describe exactly the keys of pipeline/config.py")
    assert len(keys) == len(set(keys))


def test_example_file_lists_every_key_and_loads_back_as_the_defaults(tmp_path, capsys):
    assert cli.main(["config", "--example"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "example.yaml"
    path.write_text(text)
    assert config_lib.load(str(path), base_dir=str(tmp_path)) == config_lib.load(
        base_dir=str(tmp_path))
    values = yaml.safe_load(text)
    flat = {f"{section}.{k}" if isinstance(v, dict) else section
            for section, v in values.items() for k in (v if isinstance(v, dict) else [None])}
    assert flat == set(config_reference.all_keys())
    for key in config_reference.all_keys():
        assert config_reference.DESCRIPTIONS[key] in text, key


def test_example_file_edited_with_a_changed_value_is_honoured(tmp_path):
    text = config_reference.example_yaml().replace("phase2_epochs: 5 ", "phase2_epochs: 0 ")
    path = tmp_path / "edited.yaml"
    path.write_text(text)
    config = config_lib.load(str(path))
    assert config.training.phase2_epochs == 0
    assert config == dataclasses.replace(
        config_lib.load(), training=dataclasses.replace(config_lib.load().training,
                                                        phase2_epochs=0))


def test_readme_configuration_reference_is_the_example_file():
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    start, end = "<!-- config-example:start -->\n```yaml\n", "```\n<!-- config-example:end -->"
    assert start in readme and end in readme, "README.md lost its configuration reference"
    block = readme.split(start, 1)[1].split(end, 1)[0]
    assert block == config_reference.example_yaml(), (
        "README.md's configuration reference is stale: paste `inception-retrain config "
        "--example` between the config-example markers")
