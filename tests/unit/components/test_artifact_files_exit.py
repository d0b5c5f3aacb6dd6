"""artifact_files.exit_after: a task's exit code survives tensorflow-io's abort at interpreter
exit (tensorflow/io#2039), stood in for by a module of that name whose atexit handler aborts."""
import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent("""
    import atexit, os, sys, types
    if sys.argv[1] == "loaded":  # what importing tensorflow-io's s3 filesystem leaves behind
        sys.modules["tensorflow_io"] = types.ModuleType("tensorflow_io")
        atexit.register(os.abort)
    from inception_retrain.components import artifact_files

    def main():
        print("task done", flush=True)
        if sys.argv[2] == "fails":
            raise SystemExit(3)

    artifact_files.exit_after(main)
""")


@pytest.mark.parametrize("outcome,code", [("succeeds", 0), ("fails", 3)])
@pytest.mark.parametrize("tensorflow_io", ["loaded", "absent"])
def test_the_exit_code_is_the_tasks_whether_or_not_tensorflow_io_was_loaded(
        tensorflow_io, outcome, code):
    done = subprocess.run([sys.executable, "-c", _SCRIPT, tensorflow_io, outcome],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (code, "task done\n"), done.stderr


def test_an_uncaught_error_exits_1_with_its_traceback():
    script = _SCRIPT.replace('print("task done", flush=True)', 'raise ValueError("bad input")')
    done = subprocess.run([sys.executable, "-c", script, "loaded", "succeeds"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "ValueError: bad input" in done.stderr, done.stderr
