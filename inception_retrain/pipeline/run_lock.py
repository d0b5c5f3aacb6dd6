"""One run at a time per work directory: an exclusive, non-blocking flock on <work_dir>/run.lock,
held for the whole run (pipeline, summary, report). Two runs on one work dir would share the
metadata store, gate against the same served model and push twice; the second is refused and
told which process holds the lock. The kernel drops the lock when its holder dies, so a killed
run never leaves a stale lock behind. Re-entrant within one process."""
import contextlib
import datetime
import fcntl
import json
import os
import socket
import sys
import time
from typing import Dict, Iterator, Optional

LOCK_FILE = "run.lock"
_HELD: Dict[str, int] = {}  # lock path -> nesting depth, in this process
# held_elsewhere's probe holds a shared lock for microseconds; a run starting at that instant
# retries for this long before it is refused (a real holder holds it for the whole run).
PROBE_GRACE_SECONDS = 0.5


class RunLockedError(RuntimeError):
    """Another run holds the work directory; the message names it."""


def lock_path(work_dir: str) -> str:
    return os.path.join(work_dir, LOCK_FILE)


def _holder(path: str) -> str:
    try:
        with open(path) as f:
            holder = json.load(f)
    except (OSError, ValueError):
        return "another process"
    return (f"pid {holder.get('pid')} on {holder.get('host')}, started "
            f"{holder.get('started')}: {holder.get('command')}")


def held_elsewhere(work_dir: str) -> Optional[str]:
    """Who holds work_dir's run lock, when another process does; None when no process does or
    this one holds it. A non-blocking probe: it takes and drops a shared lock at once."""
    path = os.path.abspath(lock_path(work_dir))
    if _HELD.get(path):
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no lock file: no run ever held it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(path)
    finally:
        os.close(fd)  # releases the probe's shared lock
    return None


def _lock_exclusive(fd: int) -> bool:
    """Takes the exclusive lock without waiting for a holder; False when one holds it. Retries
    for PROBE_GRACE_SECONDS, so a probe's momentary shared lock does not refuse a run."""
    deadline = time.monotonic() + PROBE_GRACE_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


@contextlib.contextmanager
def run_lock(work_dir: str) -> Iterator[None]:
    """Holds the work directory's run lock, or raises RunLockedError at once."""
    path = os.path.abspath(lock_path(work_dir))
    if _HELD.get(path):
        _HELD[path] += 1
        try:
            yield
        finally:
            _HELD[path] -= 1
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _lock_exclusive(fd):
            raise RunLockedError(
                f"another run is using {work_dir}: {_holder(path)} holds {path}. Wait for it "
                "to finish, or use another --work-dir")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)}).encode())
        _HELD[path] = 1
        try:
            yield
        finally:
            del _HELD[path]
    finally:
        os.close(fd)  # releases the lock
