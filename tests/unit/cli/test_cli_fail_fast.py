"""Issue 13, items 13 and 11: `run` with a bad data root or an unusable work dir says so in
one line, fast, without importing TensorFlow or TFX and without creating anything."""
import json
import subprocess
import sys
import time

import pytest

from test_cli import HEAVY, _IMPORTS_AFTER


def _run_cli(argv, cwd):
    start = time.time()
    done = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER, json.dumps(argv),
                           json.dumps(HEAVY)], capture_output=True, text=True, timeout=120,
                          cwd=cwd)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], result["heavy"], done.stderr, time.time() - start


def test_a_missing_data_root_fails_fast_importing_nothing_heavy_creating_nothing(tmp_path):
    """Item 13: `run --data-root /nonexistent` took 4-6 s, imported TensorFlow and created
    ./runs/local/logs before saying `data error:`."""
    code, heavy, stderr, seconds = _run_cli(["run", "--data-root", str(tmp_path / "nope")],
                                            tmp_path)
    assert code == 2 and "data error: data root" in stderr and "does not exist" in stderr
    assert heavy == [], f"imported {heavy}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "created files before the check"
    assert seconds < 4, f"took {seconds:.1f} s"


def test_a_layout_error_is_found_without_tensorflow(tmp_path):
    """Item 13: the local layout checks list folders with the standard library."""
    root = tmp_path / "data"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(b"x")
    code, heavy, stderr, _ = _run_cli(["run", "--data-root", str(root), "--work-dir",
                                       str(tmp_path / "work")], tmp_path)
    assert code == 2 and "holds no image files" in stderr and "/b" in stderr
    assert heavy == [] and not (tmp_path / "work").exists()


@pytest.mark.parametrize("work_dir, expected", [
    ("afile", "is a file, not a directory"), ("afile/below", "Not a directory"),
    ("/proc/inception-retrain-test", "No such file or directory")])
def test_an_unusable_work_dir_is_one_line(tmp_path, work_dir, expected):
    """Item 11: a file or a path under /proc as --work-dir ended in a traceback."""
    (tmp_path / "afile").write_text("not a folder")
    root = tmp_path / "data"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        (root / name / "x.png").write_bytes(b"x")
    code, heavy, stderr, _ = _run_cli(["run", "--data-root", str(root), "--work-dir", work_dir],
                                      tmp_path)
    assert code == 2 and "config error: work_dir" in stderr and expected in stderr, stderr
    assert "Traceback" not in stderr and heavy == []
