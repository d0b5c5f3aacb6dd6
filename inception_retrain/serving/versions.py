"""TF Serving's version directories under one model base path: list, publish, prune, roll back.

TF Serving (FileSystemStoragePathSource) polls the base path, takes every child whose name parses
as an integer as a version, and by default serves the highest (tf_serving_version restates its
rule exactly). So here:
- a new version appears only by one rename of a complete directory (local or mounted
  filesystems, where rename is atomic); work in progress lives under names starting with ".",
  which never parse as integers, so a poll in between sees nothing new;
- on object stores (gs://, s3://, ...), which have no atomic rename, files are copied into the
  version directory with saved_model.pb last: the version cannot load before it is complete;
- old versions are renamed out of the integer namespace before they are deleted;
- a rollback publishes a copy of an earlier version as a new, highest version, so the plain
  "latest" policy serves it without a TF Serving config change, and history stays monotonic.
- on local and mounted filesystems, writers hold an exclusive flock on the base directory for
  the whole publish, prune or rollback, so concurrent pushes get distinct, complete
  versions, and leftovers found under the lock are an interrupted writer's, never a live one's;
  object stores have no lock: one writer at a time there (one schedule per model name);
- retention keeps the newest `keep` complete versions; a half-copied version never counts;
- publishing the model the served version already holds publishes nothing (a rerun after a push
  that was killed right after its rename).
"""
import contextlib
import dataclasses
import datetime
import fcntl
import hashlib
import json
import os
import posixpath
import shutil
import uuid
from typing import Dict, Iterator, List, Optional

SAVED_MODEL_FILE = "saved_model.pb"
PUSH_RECORD = posixpath.join("assets.extra", "push_record.json")
INCOMPLETE_PREFIX = ".incomplete-"
DELETING_PREFIX = ".deleting-"
_INT64 = (-2 ** 63, 2 ** 63 - 1)
_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale


class ServingDirError(ValueError):
    """The base path or a requested version cannot be used; the message names it."""


class ServedVersionChanged(ServingDirError):
    """What is served changed after the gate compared the candidate with it: not pushed."""


@dataclasses.dataclass(frozen=True)
class Published:
    """One published version and what retention removed afterwards."""

    version: int
    path: str
    pruned: List[int]
    already_served: bool = False  # the served version already held this model: nothing copied


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
    def read_bytes(path: str) -> bytes:
        with open(path, "rb") as f:
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

    def read_bytes(self, path: str) -> bytes:
        with self._gfile.GFile(path, "rb") as f:
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


def tf_serving_version(name: str) -> Optional[int]:
    """The version number TF Serving reads from a child of the base path, or None.

    FileSystemStoragePathSource's ParseVersionNumber (tensorflow/serving,
    tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc) calls
    tsl::strings::safe_strto64 on every child's name, file or directory alike: C-locale
    whitespace around it allowed, an optional "-", then ASCII digits only, within int64."""
    text = name.strip(_C_SPACE)
    digits = text[1:] if text.startswith("-") else text
    if not digits or any(not "0" <= c <= "9" for c in digits):
        return None
    value = int(text)
    return value if _INT64[0] <= value <= _INT64[1] else None


def _entries(fs, base: str) -> Dict[int, str]:
    """{version: child name} as TF Serving indexes them (of duplicates, the last name in
    sorted order wins, as in its IndexChildrenByVersion over a std::set)."""
    if not fs.exists(base):
        return {}
    found: Dict[int, str] = {}
    for name in sorted(fs.listdir(base)):
        version = tf_serving_version(name)
        if version is not None:
            found[version] = name
    return found


def list_versions(base: str) -> List[int]:
    """Every version TF Serving would consider under base, ascending (complete or not)."""
    return sorted(_entries(_fs(base), base))


def served_version(base: str) -> Optional[int]:
    """The version TF Serving serves with its default policy (the highest), or None."""
    versions = list_versions(base)
    return versions[-1] if versions else None


def is_complete(base: str, version: int) -> bool:
    """A version directory holding a saved_model.pb (a file named like a version is not)."""
    fs = _fs(base)
    name = _entries(fs, base).get(version)
    return name is not None and fs.exists(fs.join(base, name, SAVED_MODEL_FILE))


@contextlib.contextmanager
def publish_lock(base: str) -> Iterator[None]:
    """Exclusive lock over one base path for a publish, prune or rollback (local filesystems;
    waits for the holder). Object stores have none: no-op there."""
    if is_remote(base):
        yield
        return
    os.makedirs(base, exist_ok=True)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)  # the directory itself: no lock file
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def version_path(base: str, version: int) -> str:
    fs = _fs(base)
    return fs.join(base, _entries(fs, base).get(version, str(version)))


def read_push_record(base: str, version: int) -> Dict:
    """What a version is: when it was published, from which model, whether a rollback."""
    fs = _fs(base)
    path = fs.join(version_path(base, version), PUSH_RECORD)
    return json.loads(fs.read_text(path)) if fs.exists(path) else {}


def _check_model_dir(model_dir: str) -> None:
    fs = _fs(model_dir)
    if not fs.exists(fs.join(model_dir, SAVED_MODEL_FILE)):
        raise ServingDirError(f"{model_dir} holds no {SAVED_MODEL_FILE}: not a SavedModel")


def _remove_leftovers(fs, base: str) -> None:
    """Staging and half-deleted directories of an interrupted writer (never integer names);
    called under publish_lock, so no live writer owns them."""
    for name in fs.listdir(base):
        if name.startswith((INCOMPLETE_PREFIX, DELETING_PREFIX)):
            fs.rmtree(fs.join(base, name))


def _record(version: int, facts: Dict) -> str:
    """The push record: source, rollback_of, replaced (, reason), version, publish time."""
    return json.dumps(dict(facts, version=version, published_at=datetime.datetime.now(
        datetime.timezone.utc).isoformat(timespec="seconds")), indent=2)


def _publish_local(fs: _LocalFs, model_dir: str, base: str, facts: Dict) -> int:
    staging = fs.join(base, INCOMPLETE_PREFIX + uuid.uuid4().hex)
    try:
        shutil.copytree(model_dir, staging)
        version = (served_version(base) or 0) + 1
        fs.write_text(fs.join(staging, PUSH_RECORD), _record(version, facts))
        fs.sync_tree(staging)
        os.rename(staging, fs.join(base, str(version)))  # the only step that creates a version
        return version
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)


def _model_digest(fs, model_dir: str) -> str:
    """sha256 of a SavedModel's graph and variables index: what tells two models apart."""
    digest = hashlib.sha256()
    for name in (SAVED_MODEL_FILE, posixpath.join("variables", "variables.index")):
        path = fs.join(model_dir, name)
        if fs.exists(path):
            digest.update(fs.read_bytes(path))
    return digest.hexdigest()


def _already_served(fs, model_dir: str, base: str, source: str) -> Optional[int]:
    """The served version when it is this very model (same source and bytes), else None."""
    version = served_version(base)
    if version is None or not is_complete(base, version):
        return None
    if read_push_record(base, version).get("source") != source:
        return None
    same = _model_digest(fs, version_path(base, version)) == _model_digest(fs, model_dir)
    return version if same else None


def _publish_remote(fs: _GFileFs, model_dir: str, base: str, facts: Dict) -> int:
    version = (served_version(base) or 0) + 1
    target = fs.join(base, str(version))
    complete = False
    try:
        for name in fs.files(model_dir):
            if name not in (SAVED_MODEL_FILE, PUSH_RECORD):
                fs.copy(fs.join(model_dir, name), fs.join(target, name))
        fs.write_text(fs.join(target, PUSH_RECORD), _record(version, facts))
        # Last: until saved_model.pb exists, TF Serving cannot load the version.
        fs.copy(fs.join(model_dir, SAVED_MODEL_FILE), fs.join(target, SAVED_MODEL_FILE))
        complete = True
    finally:
        if not complete and fs.exists(target):
            fs.rmtree(target)
    return version


def publish(model_dir: str, base: str, keep: int, source: str = "",
            rollback_of: Optional[int] = None, check_served: bool = False,
            expect_served: Optional[int] = None, reason: str = "") -> Published:
    """Copies the SavedModel in model_dir to <base>/<highest + 1>/, then keeps `keep` versions.

    A failure at any point leaves no new integer directory on local filesystems. If the served
    version already holds this model (same source, same bytes), nothing is copied. With
    check_served, the push happens only if expect_served (what a gate compared the model with;
    None = nothing served) is still what is served: compare and swap, under the lock. The push
    record keeps the version it replaced and, for a rollback, the reason given."""
    if keep < 1:
        raise ServingDirError(f"keep_versions must be at least 1, got {keep}")
    _check_model_dir(model_dir)
    fs = _fs(base)
    fs.makedirs(base)
    source = source or model_dir
    with publish_lock(base):
        served = served_version(base)
        if check_served and served != expect_served:
            raise ServedVersionChanged(
                f"{base} serves {_describe(served)} now, but the gate compared the candidate "
                f"with {_describe(expect_served)}: nothing pushed. Run again to evaluate "
                "against what is served now")
        _remove_leftovers(fs, base)
        if rollback_of is None:
            same = _already_served(fs, model_dir, base, source)
            if same is not None:
                return Published(same, version_path(base, same), [], already_served=True)
        facts = {"source": source, "rollback_of": rollback_of, "replaced": served,
                 **({"reason": reason} if rollback_of is not None else {})}
        if is_remote(base):
            version = _publish_remote(fs, model_dir, base, facts)
        else:
            version = _publish_local(fs, model_dir, base, facts)
        return Published(version, fs.join(base, str(version)), _prune(fs, base, keep))


def _describe(version: Optional[int]) -> str:
    return "nothing" if version is None else f"version {version}"


def prune(base: str, keep: int) -> List[int]:
    """Deletes versions older than the newest `keep` complete ones; returns their numbers.

    Only complete versions count toward `keep`; incomplete version directories older than the
    oldest kept one go too. Files named like versions are never deleted (not ours)."""
    if keep < 1:
        raise ServingDirError(f"keep_versions must be at least 1, got {keep}")
    with publish_lock(base):
        return _prune(_fs(base), base, keep)


def _prune(fs, base: str, keep: int) -> List[int]:
    entries = _entries(fs, base)
    complete = [v for v in sorted(entries) if is_complete(base, v)]
    if len(complete) <= keep:
        return []
    oldest_kept = complete[-keep]
    old = [v for v in sorted(entries) if v < oldest_kept
           and fs.isdir(fs.join(base, entries[v]))]
    for version in old:
        path = fs.join(base, entries[version])
        if is_remote(base):
            fs.rmtree(path)
        else:  # out of TF Serving's sight first, then deleted
            doomed = fs.join(base, f"{DELETING_PREFIX}{version}-{uuid.uuid4().hex}")
            os.rename(path, doomed)
            fs.rmtree(doomed)
    return old


def rollback(base: str, to_version: int, keep: int, reason: str = "") -> Published:
    """Serves an earlier version again by publishing a copy of it as the new highest version;
    reason (why, in the operator's words) goes into its push record."""
    versions = list_versions(base)
    if not versions:
        raise ServingDirError(f"no versions under {base}: nothing to roll back")
    complete = [v for v in versions if is_complete(base, v)]
    if to_version not in complete:
        raise ServingDirError(f"version {to_version} is not under {base} (as a complete "
                              f"version); available: {', '.join(map(str, complete)) or 'none'}")
    if to_version == versions[-1]:
        raise ServingDirError(f"version {to_version} is already the served version in {base}")
    original = read_push_record(base, to_version)
    source = original.get("source") or version_path(base, to_version)
    return publish(version_path(base, to_version), base, keep, source=source,
                   rollback_of=to_version, reason=reason)
