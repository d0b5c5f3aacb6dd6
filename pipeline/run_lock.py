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
from typing import Dict, Iterator, Optional

LOCK_FILE = "run.lock"
_HELD: Dict[str, int] = {}  # lock path -> nesting depth, in this process


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
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(
                f"another run is using {work_dir}: {_holder(path)} holds {path}. Wait for it "
                "to finish, or use another --work-dir") from None
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
