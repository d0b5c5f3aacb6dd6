"""The one file-access layer for artifact URIs: reading and writing the files components leave in
their artifacts, local paths and object stores alike. Plain open/glob locally (no TensorFlow
import), tf.io.gfile (imported on first use) for a URI with a scheme (gs://, s3://, ram://), as
on Kubeflow and Vertex. Every reader of a run and every contract module goes through it.
TensorFlow has no s3:// filesystem of its own: tensorflow-io registers it when imported (the
"s3" extra), so an s3:// path imports it first."""
import contextlib
import fnmatch
import glob as _glob
import json
import math
import os
import shutil
import sys
import tempfile
import traceback
from typing import IO, Any, Callable, Iterator, List, Optional, Sequence


def _remote(path: str) -> bool:
    return "://" in path


def _gfile(path: str):
    """tf.io.gfile, with the s3:// filesystem registered first when path needs it."""
    import tensorflow as tf

    if path.startswith("s3://"):
        try:
            import tensorflow_io  # noqa: F401  (registers s3:// with tf.io.gfile)
        except ImportError:
            raise ImportError(f"{path}: s3:// URIs need tensorflow-io "
                              "(pip install 'inception-retrain[s3]')") from None
    return tf.io.gfile


def open_text(path: str, mode: str = "r") -> IO[str]:
    """A text file opened for reading ("r") or writing ("w", creating its folder)."""
    if _remote(path):
        return _gfile(path).GFile(path, mode)
    if "w" in mode:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return open(path, mode, encoding="utf-8")


def open_binary(path: str) -> IO[bytes]:
    """A file opened for reading bytes, seekable (a header can be read without the rest)."""
    if _remote(path):
        return _gfile(path).GFile(path, "rb")
    return open(path, "rb")


def exists(path: str) -> bool:
    if _remote(path):
        return _gfile(path).exists(path)
    return os.path.exists(path)


def isdir(path: str) -> bool:
    if _remote(path):
        return _gfile(path).isdir(path)
    return os.path.isdir(path)


def read_bytes(path: str) -> Optional[bytes]:
    """The file's bytes, or None when it does not exist."""
    if not exists(path):
        return None
    if _remote(path):
        with _gfile(path).GFile(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def read_text(path: str) -> Optional[str]:
    """The file's text, or None when it does not exist (its component did not write it)."""
    if not exists(path):
        return None
    with open_text(path) as f:
        return f.read()


def read_json(path: str) -> Optional[Any]:
    """The file's JSON value, or None when it does not exist."""
    text = read_text(path)
    return None if text is None else json.loads(text)


def glob(pattern: str) -> List[str]:
    """Paths matching pattern, sorted; as tf.io.gfile.glob, "*" matches names starting with a
    dot too (a quarantine file of the pattern "*/*" is ".quarantine.jsonl")."""
    if _remote(pattern):
        return sorted(_gfile(pattern).glob(pattern))
    directory, name = os.path.split(pattern)
    folders = _glob.glob(directory) if _glob.has_magic(directory) else [directory]
    return sorted(os.path.join(folder, entry) for folder in folders if os.path.isdir(folder)
                  for entry in os.listdir(folder) if fnmatch.fnmatchcase(entry, name))


@contextlib.contextmanager
def local_copies(paths: Sequence[str]) -> Iterator[List[str]]:
    """Local files for readers that open only local files (OpenSlide): a local path (or "") as
    it is; a URI copied into one temporary folder under its own name, so files beside each
    other stay beside each other (a slide and its annotation). The folder is deleted on exit."""
    if not any(_remote(path) for path in paths):
        yield list(paths)
        return
    folder = tempfile.mkdtemp(prefix="inception-retrain-copy-")
    try:
        local = []
        for path in paths:
            if _remote(path):
                copy = os.path.join(folder, path.rstrip("/").rsplit("/", 1)[-1])
                _gfile(path).copy(path, copy, overwrite=True)
                path = copy
            local.append(path)
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def json_safe(value: Any) -> Any:
    """value as strict JSON holds it: NaN and infinities (the precision of a class never
    predicted) become null, numpy scalars plain numbers, tuples lists, keys strings."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def exit_after(main: Callable[[], Any]) -> None:
    """Runs main and ends the process with its exit code. When tensorflow-io was loaded (an
    s3:// path went through this layer) the end is os._exit after flushing: its s3 filesystem
    aborts every process at interpreter exit ("pure virtual method called", tensorflow/io#2039,
    fixed upstream, unreleased), which would turn a task that succeeded into a crash."""
    code: Any = 0
    try:
        main()
    except SystemExit as exit_:
        code = exit_.code
    except Exception:  # reported as the interpreter would, with its exit code
        traceback.print_exc()
        code = 1
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    code = code or 0
    if "tensorflow_io" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
