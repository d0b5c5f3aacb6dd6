"""TF Serving's version directories under one model base path: list, publish, prune, roll back.

TF Serving (FileSystemStoragePathSource) polls the base path, takes every child whose name parses
as an integer as a version, and by default serves the highest. So here:
- a new version appears only by one rename of a complete directory (local or mounted
  filesystems, where rename is atomic); work in progress lives under names starting with ".",
  which never parse as integers, so a poll in between sees nothing new;
- on object stores (gs://, s3://, ...), which have no atomic rename, files are copied into the
  version directory with saved_model.pb last: the version cannot load before it is complete;
- old versions are renamed out of the integer namespace before they are deleted;
- a rollback publishes a copy of an earlier version as a new, highest version, so the plain
  "latest" policy serves it without a TF Serving config change, and history stays monotonic.
One writer per base path at a time (one pipeline per model name): leftovers of an interrupted
writer are removed by the next one.
"""
import dataclasses
import datetime
import json
import os
import posixpath
import shutil
import uuid
from typing import Dict, List, Optional

SAVED_MODEL_FILE = "saved_model.pb"
PUSH_RECORD = posixpath.join("assets.extra", "push_record.json")
INCOMPLETE_PREFIX = ".incomplete-"
DELETING_PREFIX = ".deleting-"


class ServingDirError(ValueError):
    """The base path or a requested version cannot be used; the message names it."""


@dataclasses.dataclass(frozen=True)
class Published:
    """One published version and what retention removed afterwards."""

    version: int
    path: str
    pruned: List[int]


def is_remote(path: str) -> bool:
    return "://" in path


class _LocalFs:
    """POSIX filesystem: real atomic rename, fsync before publishing."""

    join = staticmethod(os.path.join)
    listdir = staticmethod(os.listdir)
    isdir = staticmethod(os.path.isdir)
    exists = staticmethod(os.path.exists)

    @staticmethod
    def makedirs(path: str) -> None:
        os.makedirs(path, exist_ok=True)

    @staticmethod
    def rmtree(path: str) -> None:
        shutil.rmtree(path)

    @staticmethod
    def read_text(path: str) -> str:
        with open(path) as f:
            return f.read()

    @staticmethod
    def write_text(path: str, text: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    @staticmethod
    def sync_tree(path: str) -> None:
        """Flushes every file and directory to disk, so a crash after the rename cannot leave
        a version directory with empty files."""
        for dirpath, _, filenames in os.walk(path):
            for name in filenames:
                with open(os.path.join(dirpath, name), "rb") as f:
                    os.fsync(f.fileno())
            fd = os.open(dirpath, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class _GFileFs:
    """Any filesystem tf.io.gfile reads (gs://, s3://, hdfs://, ram://); no atomic rename."""

    def __init__(self):
        import tensorflow as tf

        self._gfile = tf.io.gfile

    join = staticmethod(posixpath.join)

    def listdir(self, path: str) -> List[str]:
        return [name.rstrip("/") for name in self._gfile.listdir(path)]

    def isdir(self, path: str) -> bool:
        return self._gfile.isdir(path)

    def exists(self, path: str) -> bool:
        return self._gfile.exists(path)

    def makedirs(self, path: str) -> None:
        self._gfile.makedirs(path)

    def rmtree(self, path: str) -> None:
        self._gfile.rmtree(path)

    def read_text(self, path: str) -> str:
        with self._gfile.GFile(path) as f:
            return f.read()

    def write_text(self, path: str, text: str) -> None:
        self._gfile.makedirs(posixpath.dirname(path))
        with self._gfile.GFile(path, "w") as f:
            f.write(text)

    def files(self, root: str) -> List[str]:
        """Paths of all files under root, relative to it."""
        found = []
        for dirpath, _, filenames in self._gfile.walk(root):
            relative = dirpath[len(root):].lstrip("/")
            found.extend(posixpath.join(relative, name) if relative else name
                         for name in filenames)
        return found

    def copy(self, source: str, destination: str) -> None:
        self._gfile.makedirs(posixpath.dirname(destination))
        self._gfile.copy(source, destination, overwrite=True)


def _fs(path: str):
    return _GFileFs() if is_remote(path) else _LocalFs()


def list_versions(base: str) -> List[int]:
    """Integer version directories under base, ascending (what TF Serving would consider)."""
    fs = _fs(base)
    if not fs.exists(base):
        return []
    return sorted(int(name) for name in fs.listdir(base)
                  if name.isdigit() and fs.isdir(fs.join(base, name)))


def served_version(base: str) -> Optional[int]:
    """The version TF Serving serves with its default policy (the highest), or None."""
    versions = list_versions(base)
    return versions[-1] if versions else None


def version_path(base: str, version: int) -> str:
    return _fs(base).join(base, str(version))


def read_push_record(base: str, version: int) -> Dict:
    """What a version is: when it was published, from which model, whether a rollback."""
    fs = _fs(base)
    path = fs.join(base, str(version), PUSH_RECORD)
    return json.loads(fs.read_text(path)) if fs.exists(path) else {}


def _check_model_dir(model_dir: str) -> None:
    fs = _fs(model_dir)
    if not fs.exists(fs.join(model_dir, SAVED_MODEL_FILE)):
        raise ServingDirError(f"{model_dir} holds no {SAVED_MODEL_FILE}: not a SavedModel")


def _remove_leftovers(fs, base: str) -> None:
    """Staging and half-deleted directories of an interrupted writer (never integer names)."""
    for name in fs.listdir(base):
        if name.startswith((INCOMPLETE_PREFIX, DELETING_PREFIX)):
            fs.rmtree(fs.join(base, name))


def _record(version: int, source: str, rollback_of: Optional[int]) -> str:
    return json.dumps({
        "version": version, "source": source, "rollback_of": rollback_of,
        "published_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds")}, indent=2)


def _publish_local(fs: _LocalFs, model_dir: str, base: str, source: str,
                   rollback_of: Optional[int]) -> int:
    staging = fs.join(base, INCOMPLETE_PREFIX + uuid.uuid4().hex)
    try:
        shutil.copytree(model_dir, staging)
        version = (served_version(base) or 0) + 1
        fs.write_text(fs.join(staging, PUSH_RECORD), _record(version, source, rollback_of))
        fs.sync_tree(staging)
        while True:
            target = fs.join(base, str(version))
            try:
                os.rename(staging, target)  # the only step that creates a version
                return version
            except OSError:
                if not os.path.exists(target):
                    raise
            version += 1  # another writer published this number meanwhile
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)


def _publish_remote(fs: _GFileFs, model_dir: str, base: str, source: str,
                    rollback_of: Optional[int]) -> int:
    version = (served_version(base) or 0) + 1
    target = fs.join(base, str(version))
    complete = False
    try:
        for name in fs.files(model_dir):
            if name not in (SAVED_MODEL_FILE, PUSH_RECORD):
                fs.copy(fs.join(model_dir, name), fs.join(target, name))
        fs.write_text(fs.join(target, PUSH_RECORD), _record(version, source, rollback_of))
        # Last: until saved_model.pb exists, TF Serving cannot load the version.
        fs.copy(fs.join(model_dir, SAVED_MODEL_FILE), fs.join(target, SAVED_MODEL_FILE))
        complete = True
    finally:
        if not complete and fs.exists(target):
            fs.rmtree(target)
    return version


def publish(model_dir: str, base: str, keep: int, source: str = "",
            rollback_of: Optional[int] = None) -> Published:
    """Copies the SavedModel in model_dir to <base>/<highest + 1>/, then keeps `keep` versions.

    A failure at any point leaves no new integer directory on local filesystems."""
    if keep < 1:
        raise ServingDirError(f"keep_versions must be at least 1, got {keep}")
    _check_model_dir(model_dir)
    fs = _fs(base)
    fs.makedirs(base)
    _remove_leftovers(fs, base)
    if is_remote(base):
        version = _publish_remote(fs, model_dir, base, source or model_dir, rollback_of)
    else:
        version = _publish_local(fs, model_dir, base, source or model_dir, rollback_of)
    return Published(version, fs.join(base, str(version)), prune(base, keep))


def prune(base: str, keep: int) -> List[int]:
    """Deletes all but the newest `keep` versions; returns the deleted version numbers."""
    if keep < 1:
        raise ServingDirError(f"keep_versions must be at least 1, got {keep}")
    fs = _fs(base)
    old = list_versions(base)[:-keep]
    for version in old:
        path = fs.join(base, str(version))
        if is_remote(base):
            fs.rmtree(path)
        else:  # out of TF Serving's sight first, then deleted
            doomed = fs.join(base, f"{DELETING_PREFIX}{version}-{uuid.uuid4().hex}")
            os.rename(path, doomed)
            fs.rmtree(doomed)
    return old


def rollback(base: str, to_version: int, keep: int) -> Published:
    """Serves an earlier version again by publishing a copy of it as the new highest version."""
    versions = list_versions(base)
    if not versions:
        raise ServingDirError(f"no versions under {base}: nothing to roll back")
    if to_version not in versions:
        raise ServingDirError(f"version {to_version} is not under {base}; "
                              f"available: {', '.join(map(str, versions))}")
    if to_version == versions[-1]:
        raise ServingDirError(f"version {to_version} is already the served version in {base}")
    original = read_push_record(base, to_version)
    source = original.get("source") or version_path(base, to_version)
    return publish(version_path(base, to_version), base, keep, source=source,
                   rollback_of=to_version)
