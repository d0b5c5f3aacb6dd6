"""One run at a time per work directory (issue 13, item 2): a second run is refused at once,
naming the holder; a killed holder leaves no stale lock. Real processes."""
import signal
import subprocess
import sys
import time

import pytest

from conftest import RUN_LOCK_HOLDER as HOLD, holding_run_lock
from inception_retrain.pipeline import run_lock


@pytest.fixture
def holder(tmp_path):
    """A process holding the lock of tmp_path/work until the test ends (or kills it)."""
    with holding_run_lock(tmp_path / "work") as process:
        yield process


def test_a_second_run_is_refused_naming_the_holder(tmp_path, holder):
    started = time.monotonic()
    with pytest.raises(run_lock.RunLockedError, match=rf"another run is using .*work: pid "
                                                      rf"{holder.pid} on .* holds .*run\.lock"):
        with run_lock.run_lock(str(tmp_path / "work")):
            pytest.fail("entered a locked work directory")
    assert time.monotonic() - started < 5, "refused at once, not after waiting"


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with run_lock.run_lock(str(tmp_path / "work")):
        pass


def test_the_lock_is_reentrant_in_one_process_and_released_after(tmp_path):
    work = str(tmp_path / "work")
    with run_lock.run_lock(work):
        with run_lock.run_lock(work):
            pass
        probe = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(60)", ""), work],
                               capture_output=True, text=True)
        assert probe.returncode == 1 and "RunLockedError" in probe.stderr
    probe = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(60)", ""), work],
                           capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr


def test_a_run_starting_while_someone_probes_the_lock_is_not_refused(tmp_path):
    """`history`, `report` and the summary ask whether a run holds the lock (held_elsewhere),
    which takes a shared lock for an instant; a run starting at that instant waits it out."""
    import fcntl
    import os
    import threading

    work = tmp_path / "work"
    with run_lock.run_lock(str(work)):
        pass  # the lock file exists, as after any run
    probe = os.open(run_lock.lock_path(str(work)), os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a probe caught mid-way
    threading.Timer(0.1, os.close, [probe]).start()     # ... which lets go
    with run_lock.run_lock(str(work)):
        assert run_lock.held_elsewhere(str(work)) is None  # this process holds it
