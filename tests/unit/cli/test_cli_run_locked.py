"""Issue 13, item 2: `run` on a work dir another run holds is refused at once, in one line
naming the holder, with its own exit code, before any log file or other output is written and
without printing the summary of the run in flight. Two real processes: a holder, then the
CLI."""
import json
import subprocess
import sys
import time

from conftest import holding_run_lock, write_class_images
from test_cli import HEAVY, _IMPORTS_AFTER

from inception_retrain.cli import main as cli


def test_a_second_run_is_refused_at_once_naming_the_holder(tmp_path):
    """Item 2: a second `run` on the same --work-dir."""
    data, work = write_class_images(tmp_path / "data", {"a": 3, "b": 3}), tmp_path / "work"
    with holding_run_lock(work) as holder:
        before = sorted(p.relative_to(work) for p in work.rglob("*"))
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", _IMPORTS_AFTER,
             json.dumps(["run", "--data-root", str(data), "--work-dir", str(work),
                         "--base-weights", "none"]), json.dumps(HEAVY)],
            capture_output=True, text=True, timeout=120, cwd=tmp_path)
        seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    *printed, result = done.stdout.splitlines()
    result, printed = json.loads(result), "\n".join(printed)
    assert result["code"] == cli.EXIT_LOCKED not in (0, 1, 2)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"run error: another run is using {work}: pid {holder.pid} on ")
    assert "run.lock" in lines[0]
    assert printed.strip() == "", "nothing on stdout: no progress, no summary of the other run"
    assert result["heavy"] == [], "refused before TFX, TensorFlow or ML Metadata is imported"
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before, \
        "a refused run wrote nothing (no log file, no report)"
    assert seconds < 10, f"took {seconds:.1f} s"
