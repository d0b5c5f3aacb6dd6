"""Issue 26: commands that only read leave no trace, and a wrong path is an error named before
anything heavy happens: `config` in an empty folder, `rollback` on a missing push destination,
`predict` on a missing file (before any model loads)."""
import json
import os
import subprocess
import sys

from inception_retrain.cli.main import main
from inception_retrain.pipeline import default_dataset

_RUN = """
import json, sys
from inception_retrain.cli.main import main
code = main(json.loads(sys.argv[1]))
print("\\n" + json.dumps({"code": code, "tensorflow": "tensorflow" in sys.modules}))
"""


def _cli_in(folder, argv):
    """The CLI in a fresh interpreter whose current folder is folder: (exit code, whether it
    imported TensorFlow, stderr)."""
    done = subprocess.run([sys.executable, "-c", _RUN, json.dumps(argv)], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], result["tensorflow"], done.stderr


def test_config_in_an_empty_folder_leaves_it_empty(tmp_path):
    code, _, stderr = _cli_in(tmp_path, ["config"])
    assert code == 0, stderr
    assert "checked: the embedded default dataset" in stderr
    assert os.listdir(tmp_path) == []


def test_config_checks_the_work_dirs_copy_in_place_when_a_run_wrote_it(tmp_path, capsys):
    copy = default_dataset.ensure_default_dataset(
        str(tmp_path / default_dataset.DIRECTORY), images_per_class=default_dataset.IMAGES_PER_CLASS)
    before = sorted(os.listdir(tmp_path))
    with default_dataset.read_only_copy(str(tmp_path)) as root:
        assert root == copy
    assert main(["config", "--work-dir", str(tmp_path)]) == 0
    assert sorted(os.listdir(tmp_path)) == before
    assert not any(name.startswith(".") for name in os.listdir(copy)), \
        "no marker file among the class folders (the layout check warned about it)"


def test_a_temporary_copy_is_removed_afterwards(tmp_path):
    with default_dataset.read_only_copy(str(tmp_path / "work")) as root:
        assert sorted(os.listdir(root)) == sorted(default_dataset.CLASSES)
    assert not os.path.exists(root)
    assert not os.path.exists(tmp_path / "work")


def test_rollback_on_a_missing_push_base_is_an_error_naming_it(tmp_path, capsys):
    missing = str(tmp_path / "no" / "such" / "model")
    assert main(["rollback", "--push-base", missing]) != 0
    assert main(["rollback", "--push-base", missing, "--to", "1"]) != 0
    err = capsys.readouterr().err
    assert err.count(f"rollback error: {missing} does not exist") == 2


def test_predict_on_a_missing_file_fails_before_the_model_loads(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"not a SavedModel: loading it would fail")
    (tmp_path / "real.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 16)
    missing = str(tmp_path / "missing.jpg")
    code, imported_tf, stderr = _cli_in(tmp_path, [
        "predict", str(tmp_path / "real.jpg"), missing, "--model", str(model),
        "-o", "csv", "--output", str(tmp_path / "out.csv")])
    assert code == 1
    assert f"predict error: {missing}: no such file or folder" in stderr
    assert not imported_tf, "the model was loaded before the inputs were checked"
    assert not (tmp_path / "out.csv").exists()
