"""Issue 13, item 11: `schedule list` with no reachable Kubeflow Pipelines server printed a
90-line traceback; the README promises one line."""
import socket
import subprocess
import sys


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_schedule_list_without_a_server_is_one_line():
    """Item 11: one `schedule error:` line naming the host, exit code 1, no traceback."""
    host = f"http://127.0.0.1:{_closed_port()}"
    done = subprocess.run([sys.executable, "-m", "inception_retrain.cli.main", "schedule",
                           "list", "--host", host], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"schedule error: cannot reach Kubeflow Pipelines at {host}: [Errno 111] "
                     "Connection refused (give --host or KF_PIPELINES_ENDPOINT)"], done.stderr
