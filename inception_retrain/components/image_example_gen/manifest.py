"""Reads and checks the CSV manifest (data.manifest, one row per image), and ties a manifest to
its split folders through input patterns."""
import csv
import dataclasses
import os
import posixpath
from typing import List, Sequence, Tuple

from inception_retrain.components.image_example_gen.class_names import (
    class_name_problem,
    shown_name,
)
from inception_retrain.components.image_example_gen.ingest import (
    MANIFEST_ROW,
    LayoutError,
    Quarantined,
    is_hidden,
    is_remote,
)

# Manifest columns: path and label are required, group and site optional.
MANIFEST_COLUMNS = ("path", "label", "group", "site")
MANIFEST_REQUIRED = ("path", "label")


@dataclasses.dataclass(frozen=True)
class ManifestRow:
    """One usable row of a manifest: the image's path below the root, label, group, site."""

    row: int            # data row number, 1 for the row after the header
    path: str
    label: str
    group: str = ""
    site: str = ""


def _read_text(path: str) -> str:
    if is_remote(path):
        import tensorflow as tf

        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise LayoutError(f"manifest {path!r} is not UTF-8 text (byte offset {err.start})"
                          ) from None


def _exists(root: str, relative_path: str) -> bool:
    path = posixpath.join(root, relative_path)
    if is_remote(path):
        import tensorflow as tf

        return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)
    return os.path.isfile(path)


def read_manifest(root: str, manifest: str) -> Tuple[List[ManifestRow], List[Quarantined]]:
    """The manifest's usable rows and, for every other row, a Quarantined record naming the
    row and the reason: no path, a path outside the root or hidden, a missing file, a path
    listed before (its first row is kept), no label or a label that is no class name, more or
    fewer fields than the header. Raises LayoutError when the manifest is missing, lacks the
    path or label column, or has columns other than MANIFEST_COLUMNS.

    A CSV with a header row; paths relative to the data root with forward slashes."""
    path = posixpath.join(root, manifest)
    if not (_exists(root, manifest)):
        raise LayoutError(f"manifest {path!r} (data.manifest) does not exist")
    lines = _read_text(path).splitlines()
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in MANIFEST_REQUIRED if c not in header]
    unknown = [c for c in header if c not in MANIFEST_COLUMNS]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"has no column {', '.join(missing)}")
    if unknown:
        problems.append(f"has unknown column(s) {', '.join(repr(c) for c in unknown)}")
    if duplicated:
        problems.append(f"names column(s) {', '.join(duplicated)} twice")
    if problems:
        raise LayoutError(f"manifest {path!r}: header {header!r} " + "; ".join(problems)
                          + f"; the columns are {', '.join(MANIFEST_COLUMNS)} (path and label "
                          "required)")
    rows, quarantined, first_row = [], [], {}
    for number, fields in enumerate(reader, start=1):
        if not any(f.strip() for f in fields):
            continue  # blank lines are no rows
        where = f"manifest {manifest} row {number} (line {reader.line_num})"
        values = dict(zip(header, (f.strip() for f in fields)))
        rel = posixpath.normpath(values.get("path", "")) if values.get("path") else ""
        shown = rel or f"{manifest}#row{number}"

        def refuse(reason):
            quarantined.append(Quarantined(shown, f"{where}: {reason}", MANIFEST_ROW))

        label = values.get("label", "")
        if len(fields) != len(header):
            refuse(f"has {len(fields)} fields, the header {len(header)}")
        elif not rel:
            refuse("no path")
        elif rel.startswith(("/", "../")) or rel == ".." or "://" in rel:
            refuse(f"path {values['path']!r} is not below the data root")
        elif is_hidden(rel):
            refuse(f"path {rel!r} is a hidden file")
        elif rel in first_row:
            refuse(f"path {rel!r} is listed before, in row {first_row[rel]} (that row is kept)")
        elif not label:
            refuse("empty label")
        elif class_name_problem(label):
            refuse(f"label {shown_name(label)!r} {class_name_problem(label)}")
        elif not _exists(root, rel):
            refuse(f"file {rel!r} does not exist below the data root")
        else:
            rows.append(ManifestRow(number, rel, label, values.get("group", ""),
                                    values.get("site", "")))
            first_row[rel] = number
    return rows, quarantined


_UP = "/../"


def manifest_split_pattern(folder: str, manifest: str) -> str:
    """`<folder>/../<manifest>`: a pattern matching the manifest that names its split folder."""
    folder = posixpath.normpath(folder)
    return folder + _UP + "../" * folder.count("/") + manifest


def manifest_of_pattern(pattern: str) -> Tuple[str, str]:
    """(manifest, split folder or "") of an input pattern of a manifest run."""
    if _UP not in pattern:
        return pattern, ""
    folder = pattern.split(_UP, 1)[0]
    return posixpath.normpath(pattern), folder


def rows_in_folder(rows: Sequence[ManifestRow], folder: str) -> List[ManifestRow]:
    return [r for r in rows if not folder or r.path.startswith(folder.rstrip("/") + "/")]
