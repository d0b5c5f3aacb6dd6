"""The command line a person uses: light --help, progress lines instead of log noise, and a run
that fails at the DataGate ending with the failed component, a report and the log's path."""
import importlib.util
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from absl import logging as absl_logging

from inception_retrain.cli import progress

SUBCOMMANDS = ("run", "report", "config", "history", "schema", "compile", "schedule", "predict",
               "rollback")
HEAVY = ("tensorflow", "tfx", "apache_beam", "tensorflow_model_analysis", "tensorflow_transform",
         "kfp", "ml_metadata")

_IMPORTS_AFTER = """
import json, sys
from inception_retrain.cli.main import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as exit:
    code = exit.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print("\\n" + json.dumps({"code": code, "heavy": heavy}))
"""


def _imports_after(argv):
    """Runs the CLI in a fresh interpreter; returns its exit code, heavy packages imported,
    and what it printed."""
    done = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER, json.dumps(argv),
                           json.dumps(HEAVY)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], result["heavy"], done.stdout + done.stderr


@pytest.mark.parametrize("argv", [["--help"]] + [[name, "--help"] for name in SUBCOMMANDS]
                         + [["schedule", "create", "--help"], ["config", "--example"],
                            ["config", "--set", "training.batch_size=0"]])
def test_help_and_config_checks_import_no_tensorflow_or_tfx(argv):
    code, heavy, printed = _imports_after(argv)
    assert heavy == [], f"`inception-retrain {' '.join(argv)}` imported {heavy}"
    if argv[-1] == "training.batch_size=0":
        assert code == 2 and "training.batch_size must be at least 1" in printed
    else:
        assert code in (0, None), printed


def test_console_script_lists_every_subcommand():
    script = Path(sys.executable).with_name("inception-retrain")
    assert script.exists(), f"{script} missing: is the package installed (tools/ensure_env.sh)?"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in SUBCOMMANDS:
        assert name in done.stdout, name


def test_progress_matches_the_log_lines_of_the_installed_tfx():
    """The progress lines hang on TFX's messages; a TFX upgrade that rewords them fails here
    instead of silently losing the progress output."""
    root = Path(importlib.util.find_spec("tfx").submodule_search_locations[0])
    runner = (root / "orchestration" / "local" / "local_dag_runner.py").read_text()
    launcher = (root / "orchestration" / "portable" / "launcher.py").read_text()
    assert f"logging.info('{progress.RUNNING_TEMPLATE}', node_id)" in runner
    assert f"logging.info('{progress.FINISHED_TEMPLATE}', node_id)" in runner
    assert f"logging.info('{progress.CACHED_TEMPLATE}', execution.id)" in launcher


def _layout_with_a_note(root: Path) -> Path:
    """Two class folders and a README beside them: validate_layout logs that it ignores it."""
    from PIL import Image

    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (8, 8), (200, 10, 10)).save(root / name / "x.png")
    (root / "README.txt").write_text("notes")
    return root


def test_progress_shows_components_and_project_lines_and_files_the_noise(tmp_path):
    """Real absl records as LocalDagRunner emits them, a real project log line, third-party
    noise and a Python warning; and TensorFlow saving a SavedModel in the middle, which resets
    absl's logger level (the reason progress sets absl's verbosity flag)."""
    import warnings

    import tensorflow as tf

    from inception_retrain.components.image_example_gen import layout

    console, log_path = io.StringIO(), tmp_path / "logs" / "run.log"
    handlers_before, verbosity_before = logging.getLogger().handlers[:], \
        absl_logging.get_verbosity()
    with progress.RunProgress(str(log_path), stream=console) as tracker:
        tracker.begin(["ImageExampleGen", "Trainer"])
        absl_logging.info(progress.RUNNING_TEMPLATE, "ImageExampleGen")
        absl_logging.info(progress.CACHED_TEMPLATE, 7)
        absl_logging.info(progress.FINISHED_TEMPLATE, "ImageExampleGen")
        absl_logging.info(progress.RUNNING_TEMPLATE, "Trainer")
        tf.saved_model.save(tf.Module(), str(tmp_path / "saved"))
        layout.validate_layout(str(_layout_with_a_note(tmp_path / "data")))
        logging.getLogger("apache_beam.runners.direct").info("BatchElements statistics: noise")
        absl_logging.info("Using deployment config: noise")
        with warnings.catch_warnings():  # pytest.ini ignores some categories; not this one
            warnings.simplefilter("always")
            warnings.warn("a deprecated thing", UserWarning)
        absl_logging.info(progress.FINISHED_TEMPLATE, "Trainer")
    lines = console.getvalue().splitlines()
    text = "\n".join(lines)
    assert f"full log: {log_path}" in lines[0]
    assert "pipeline of 2 components: ImageExampleGen, Trainer" in text
    assert "[1/2] ImageExampleGen started" in text
    assert "[1/2] ImageExampleGen reused from cache in" in text
    assert "[2/2] Trainer started" in text
    assert "[2/2] Trainer done in" in text, "lost after TensorFlow saved a SavedModel"
    assert "ignoring files beside the class folders" in text and "README.txt" in text
    assert "noise" not in text and "deprecated thing" not in text
    log = log_path.read_text()
    assert "BatchElements statistics: noise" in log and "Using deployment config" in log
    assert "a deprecated thing" in log and "Component Trainer is finished." in log
    assert tracker.finished == {"ImageExampleGen": "cached", "Trainer": "done"}
    assert logging.getLogger().handlers == handlers_before
    assert absl_logging.get_verbosity() == verbosity_before


def test_verbose_progress_shows_third_party_lines(tmp_path):
    console = io.StringIO()
    with progress.RunProgress(str(tmp_path / "run.log"), verbose=True, stream=console):
        logging.getLogger("apache_beam.runners.direct").info("BatchElements statistics")
    assert "apache_beam.runners.direct: BatchElements statistics" in console.getvalue()


def test_a_failure_inside_a_component_names_it_and_logs_the_traceback(tmp_path):
    console, log_path = io.StringIO(), tmp_path / "run.log"
    with pytest.raises(ZeroDivisionError):
        with progress.RunProgress(str(log_path), stream=console) as tracker:
            tracker.begin(["ImageExampleGen"])
            absl_logging.info(progress.RUNNING_TEMPLATE, "ImageExampleGen")
            1 / 0
    text = console.getvalue()
    assert "[1/1] ImageExampleGen FAILED after" in text and "ZeroDivisionError" in text
    assert f"traceback and every component's log lines: {log_path}" in text
    assert "Traceback (most recent call last)" in log_path.read_text()






