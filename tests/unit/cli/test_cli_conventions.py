"""Issue 16, item 1: command-line conventions. --version; `config` prints YAML that --config
reads back, runs the checks `run` makes and names the nearest key of a typo; a run whose model
is not blessed ends with the next step and its own exit code; run.sh and the defaults work
from any current directory."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import write_class_images

from inception_retrain.cli import main as cli
from inception_retrain.pipeline import config as config_lib

REPO = Path(__file__).resolve().parents[3]


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"inception-retrain {cli.package_version()}"
    assert cli.package_version()[0].isdigit()


def test_config_prints_yaml_that_loads_back_as_the_same_configuration(capsys, tmp_path):
    data = write_class_images(tmp_path / "data", {"a": 3, "b": 3})
    argv = ["config", "--data-root", str(data), "--work-dir", str(tmp_path / "w"),
            "--set", "training.phase1_epochs=3", "--set", "data.split_folders=[]",
            "--set", "model_card.owners=[Lab <ml@lab.example>]"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr()
    assert not printed.out.lstrip().startswith("{"), "YAML, not JSON"
    path = tmp_path / "resolved.yaml"
    path.write_text(printed.out)
    loaded = config_lib.load(str(path))
    assert loaded == config_lib.load(overrides={
        "data": {"root": str(data)}, "work_dir": str(tmp_path / "w"),
        "training": {"phase1_epochs": 3}, "model_card": {"owners": ["Lab <ml@lab.example>"]}})
    assert yaml.safe_load(printed.out)["training"]["phase1_epochs"] == 3
    assert "checked: data layout" in printed.err


@pytest.mark.parametrize("typo, nearest", [
    ("training.batch_sise", "training.batch_size"),
    ("batch_size", "training.batch_size"),
    ("evaluation.accuracy_flor", "evaluation.accuracy_floor"),
    ("data.rooot", "data.root"),
    ("model_card.owner", "model_card.owners"),
])
def test_a_mistyped_key_names_the_nearest_one(typo, nearest, capsys):
    assert cli.main(["config", "--set", f"{typo}=3"]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith(f"config error: unknown key(s): {typo} (did you mean {nearest}?)")


def test_a_mistyped_choice_names_the_nearest_one(capsys):
    assert cli.main(["config", "--set", "evaluation.baseline=serverd"]) == cli.EXIT_CONFIG
    assert "got 'serverd' (did you mean served?)" in capsys.readouterr().err
    assert cli.main(["config", "--set", "data.on_drift=wran"]) == cli.EXIT_CONFIG
    assert "(did you mean warn?)" in capsys.readouterr().err


def test_a_key_nothing_is_close_to_gets_no_guess():
    assert config_lib.nearest_key("zzzz") is None
    assert config_lib.did_you_mean("zzzz") == ""


def test_config_runs_the_data_and_weights_checks_of_run(capsys, tmp_path):
    missing = tmp_path / "no-such-root"
    assert cli.main(["config", "--data-root", str(missing),
                     "--work-dir", str(tmp_path / "w")]) == cli.EXIT_CONFIG
    assert capsys.readouterr().err.startswith("data error: ")
    data = write_class_images(tmp_path / "data", {"a": 3, "b": 3})
    assert cli.main(["config", "--data-root", str(data), "--work-dir", str(tmp_path / "w"),
                     "--base-weights", str(tmp_path / "nope.h5")]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("config error: training.base_weights: file") and "nope.h5" in err
    assert not (tmp_path / "w").exists(), "a configured data root: config creates nothing"


def test_exit_codes_are_distinct_and_documented():
    codes = {"ok": 0, "failed": cli.EXIT_FAILED, "config": cli.EXIT_CONFIG,
             "locked": cli.EXIT_LOCKED, "not blessed": cli.EXIT_NOT_BLESSED}
    assert len(set(codes.values())) == len(codes)
    readme = (REPO / "README.md").read_text()
    table = readme.split("| exit code |", 1)[1].split("\n\n", 1)[0]
    for code in codes.values():
        assert f"\n| {code} |" in table, code


def test_a_run_that_is_not_blessed_says_the_next_step_and_exits_with_its_code(
        monkeypatch, capsys, tmp_path):
    from inception_retrain.cli import progress
    from inception_retrain.pipeline import local_runner
    from inception_retrain.run_reading import reader
    from inception_retrain.run_reading.record import (
        EvaluationSection,
        RunInfo,
        RunRecord,
    )
    from inception_retrain.run_rendering import summary

    record = RunRecord(pipeline="p", run=RunInfo(run_id="r1"), evaluation=EvaluationSection(
        metrics={"sparse_categorical_accuracy": 0.41}, per_class={}, baseline=None,
        blessed=False, validation_ok=False,
        failures=["sparse_categorical_accuracy = 0.4100 fails >= 0.6000"]))
    data = write_class_images(tmp_path / "data", {"a": 3, "b": 3})
    monkeypatch.setattr(local_runner, "run", lambda *a, **k: 1.0)
    monkeypatch.setattr(progress.RunProgress, "components_started", 10)
    monkeypatch.setattr(reader, "read", lambda *a, **k: record)
    monkeypatch.setattr(summary, "render", lambda *a, **k: "summary")
    monkeypatch.setattr(cli, "_write_report", lambda *a, **k: "report.html")
    code = cli.main(["run", "--data-root", str(data), "--work-dir", str(tmp_path / "w"),
                     "--base-weights", "none"])
    assert code == cli.EXIT_NOT_BLESSED == 4
    err = capsys.readouterr().err
    assert "NOT BLESSED: sparse_categorical_accuracy = 0.4100 fails >= 0.6000" in err
    assert "next:" in err and "Blessing decision" in err
    blessed = dataclasses.replace(record, evaluation=dataclasses.replace(
        record.evaluation, blessed=True, failures=[]))
    monkeypatch.setattr(reader, "read", lambda *a, **k: blessed)
    assert cli.main(["run", "--data-root", str(data), "--work-dir", str(tmp_path / "w"),
                     "--base-weights", "none"]) == 0


def test_run_sh_and_the_defaults_work_from_any_current_directory(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"  # run.sh finds its own venv, not the caller's PATH
    done = subprocess.run(["bash", str(REPO / "run.sh"), "--help"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: inception-retrain run" in done.stdout
    script = Path(sys.executable).with_name("inception-retrain")
    done = subprocess.run([str(script), "config"], cwd=elsewhere, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    resolved = yaml.safe_load(done.stdout)
    assert resolved["work_dir"] == str(elsewhere / "runs" / "local")
    from inception_retrain.pipeline.pipeline import default_schema_path

    assert os.path.isfile(default_schema_path())
