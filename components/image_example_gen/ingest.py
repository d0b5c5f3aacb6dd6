"""Plain functions that turn image files into tf.Examples or quarantine records.

No Beam and no TFX here, so each rule is testable on its own; the executor maps them over files.
Every file under a class folder ends as exactly one of: a tf.Example, or a Quarantined record
naming the file and the reason.
"""
import csv
import dataclasses
import glob
import hashlib
import io
import logging
import os
import posixpath
import re
import stat
import unicodedata
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

from inception_retrain.components import features

# Formats TensorFlow's decode ops read; their bytes are kept as they are when already RGB-ready.
_PASSTHROUGH_FORMATS = {"JPEG", "PNG"}
_PASSTHROUGH_MODES = {"RGB", "L"}
# Sources whose pixels are already lossy: re-encoded as JPEG; everything else as lossless PNG.
_LOSSY_FORMATS = {"JPEG", "MPO", "WEBP"}
_EXIF_ORIENTATION_TAG = 0x0112
_PNG_BIT_DEPTH_OFFSET = 24  # 8-byte signature + IHDR length, type, width, height
HIDDEN_POLICIES = ("error", "skip")
# Files with these extensions beside the class folders are misplaced images (a layout error);
# other files there (LICENSE.txt, README.md) are documentation and are ignored.
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}

# Quarantine categories; "hidden" files are skipped by choice and are not counted as bad.
EMPTY = "empty"
TOO_LARGE = "too_large"
NOT_AN_IMAGE = "not_an_image"
UNREADABLE = "unreadable"
HIDDEN = "hidden"
NO_GROUP = "no_group"          # the path does not match data.group_pattern
MANIFEST_ROW = "manifest_row"  # a manifest row that names no usable image
NOT_BAD = (HIDDEN,)
GROUP_NAME = "group"           # the named groups of data.group_pattern and data.site_pattern
SITE_NAME = "site"
# Manifest columns: path and label are required, group and site optional.
MANIFEST_COLUMNS = ("path", "label", "group", "site")
MANIFEST_REQUIRED = ("path", "label")
# A `<class>/<slide>/<tile>` path: a group_pattern capturing its "slide" names group folders.
GROUP_FOLDERS_PROBE = "class/slide/tile.png"
GROUP_FOLDERS_EXAMPLE = ("data.input_pattern '*/*/*' and data.group_pattern "
                         "'^[^/]+/(?P<group>[^/]+)/' for <class>/<slide>/<tile>")


class LayoutError(ValueError):
    """The data root does not have the `<root>/<class_name>/<image files>` layout."""


@dataclasses.dataclass(frozen=True)
class IngestOptions:
    """Limits applied to every image; refused images are quarantined with the reason.

    max_pixels refuses images (decompression bombs) from their header, before decoding;
    max_side downscales larger images so the longest side fits (0 keeps every size).
    """

    max_file_bytes: int = 200_000_000
    max_pixels: int = 180_000_000
    max_side: int = 4096
    jpeg_quality: int = 95
    hidden_files: str = "error"   # "error": LayoutError; "skip": listed in the quarantine
    group_pattern: str = ""       # regex with (?P<group>...) searched in the relative path
    site_pattern: str = ""        # regex with (?P<site>...) searched in the relative path
    manifest: str = ""            # CSV below the root: one row per image instead of folders

    def __post_init__(self):
        if self.max_file_bytes < 1 or self.max_pixels < 1 or self.max_side < 0:
            raise ValueError(f"ingest limits must be positive: {self}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.hidden_files not in HIDDEN_POLICIES:
            raise ValueError(f"hidden_files must be one of {HIDDEN_POLICIES}, "
                             f"got {self.hidden_files!r}")
        for key, name in (("group_pattern", GROUP_NAME), ("site_pattern", SITE_NAME)):
            pattern_problem(key, getattr(self, key), name, raise_it=True)

    @property
    def group_folders(self) -> bool:
        """Whether group_pattern names a folder between the class folder and the file
        (`<class>/<slide>/<tile>`): it captures the middle folder of such a path, not the file
        name, e.g. '^[^/]+/(?P<group>[^/]+)/'. The class is then the file's grandparent folder
        and the input pattern ends with <class>/<group>/<file> ('*/*/*')."""
        return bool(self.group_pattern and not self.manifest and search_named(
            self.group_pattern, GROUP_NAME, GROUP_FOLDERS_PROBE) == "slide")

    @property
    def grouped(self) -> bool:
        """Whether images carry a group of their own (else the split is per image)."""
        return bool(self.group_pattern or self.manifest)

    def as_dict(self) -> Dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict) -> "IngestOptions":
        return cls(**values)


def pattern_problem(key: str, pattern: str, name: str, raise_it: bool = False) -> Optional[str]:
    """Why pattern is no regular expression with a named group `name`, or None."""
    if not pattern:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        problem = f"data.{key} {pattern!r} is not a regular expression: {err}"
    else:
        problem = (None if name in compiled.groupindex else
                   f"data.{key} {pattern!r} needs a named group (?P<{name}>...), e.g. "
                   f"'^(?P<{name}>[^_/]+)_' for tiles named <{name}>_<x>_<y>.tif")
    if problem and raise_it:
        raise ValueError(problem)
    return problem


def search_named(pattern: str, name: str, relative_path: str) -> Optional[str]:
    """The named group of pattern in the path's file name or, failing that, the whole path."""
    if not pattern:
        return None
    compiled = re.compile(pattern)
    for text in (posixpath.basename(relative_path), relative_path):
        match = compiled.search(text)
        if match and match.group(name):
            return match.group(name)
    return None


@dataclasses.dataclass(frozen=True)
class Quarantined:
    """A file that could not become an example, and why."""

    relative_path: str
    reason: str
    category: str

    def as_dict(self) -> Dict[str, str]:
        return dataclasses.asdict(self)

    @property
    def bad(self) -> bool:
        return self.category not in NOT_BAD


@dataclasses.dataclass(frozen=True)
class Layout:
    """What validate_layout found: the class names, and files already accounted for."""

    classes: List[str]
    quarantined: List[Quarantined]


def is_hidden(relative_path: str) -> bool:
    return any(part.startswith(".") for part in relative_path.split("/"))


def _is_remote(path: str) -> bool:
    return "://" in path


def relative_to_root(path: str, root: str) -> str:
    """Path below root with forward slashes on every platform, e.g. `<class>/<file>`."""
    if _is_remote(path):
        return path[len(root.rstrip("/")) + 1:]
    return os.path.relpath(path, root).replace(os.sep, "/")


def label_of(relative_path: str, group_folders: bool = False) -> str:
    """The class of a file: the name of the folder it sits in ("" at the top level); with
    group_folders (`<class>/<slide>/<tile>`) the folder above its slide folder."""
    parts = relative_path.split("/")
    level = 3 if group_folders else 2
    return parts[-level] if len(parts) >= level else ""


def class_level_pattern(pattern: str, group_folders: bool = False) -> str:
    """The part of an input pattern above `<class>/<file>` ('' for the plain `*/*`), or above
    `<class>/<group folder>/<file>` with group_folders ('' for `*/*/*`)."""
    parts = pattern.strip("/").split("/")
    if group_folders and len(parts) < 3:
        raise LayoutError(f"input pattern {pattern!r} must end with <class folder>/<slide "
                          "folder>/<file>, e.g. '*/*/*': data.group_pattern names slide folders "
                          f"({GROUP_FOLDERS_EXAMPLE})")
    if len(parts) < 2:
        raise LayoutError(f"input pattern {pattern!r} must end with <class folder>/<file>, "
                          "e.g. '*/*' or 'span-{SPAN}/*/*'")
    return "/".join(parts[:-3 if group_folders else -2])


# A class name becomes a line of tf.Transform's vocabulary file and of the model's labels.txt
# (one name per line, read back stripped) and a string in tf.Examples, metrics and reports.
MAX_CLASS_NAME_CHARS = 128
# Unicode categories refused anywhere in a name: control (Cc: \n, \t, \x85), format (Cf:
# zero-width and direction marks), surrogates (Cs: bytes that are not UTF-8), private use (Co),
# unassigned (Cn), line and paragraph separators (Zl, Zp: line breaks to str.splitlines).
_REFUSED_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def shown_name(name: str) -> str:
    """A file name for a message: printable, its undecodable bytes as \\x escapes."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def not_utf8(name: str) -> bool:
    """True for a name whose bytes are not UTF-8 (os.listdir hands them as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def class_name_problem(name: str) -> Optional[str]:
    """Why a folder name cannot be a class name, or None. A class name is valid UTF-8, 1 to
    MAX_CLASS_NAME_CHARS printable characters, with no leading or trailing whitespace and no
    control, invisible or line-breaking character: tf.Transform's vocabulary drops names holding
    a newline or only whitespace, and labels.txt is read back one stripped line per name, so
    anything else trains on one set of classes and reports on another."""
    if not_utf8(name):
        return "is not valid UTF-8"
    if not name.strip():
        return "is empty or only whitespace"
    if name != name.strip():
        return "has leading or trailing whitespace"
    for char in name:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return (f"holds the control or invisible character U+{ord(char):04X} "
                    f"({unicodedata.name(char, unicodedata.category(char))})")
    if len(name) > MAX_CLASS_NAME_CHARS:
        return f"is {len(name)} characters long, above {MAX_CLASS_NAME_CHARS}"
    return None


class _LocalFiles:
    """Local listing with the standard library: no TensorFlow import for a local layout."""

    isdir = staticmethod(os.path.isdir)
    listdir = staticmethod(os.listdir)

    @staticmethod
    def glob(pattern: str) -> List[str]:
        return glob.glob(pattern)


class _RemoteFiles:
    """gs:// and other remote paths through tf.io.gfile."""

    @staticmethod
    def isdir(path: str) -> bool:
        import tensorflow as tf

        return tf.io.gfile.isdir(path)

    @staticmethod
    def listdir(path: str) -> List[str]:
        import tensorflow as tf

        return [e.rstrip("/") for e in tf.io.gfile.listdir(path)]

    @staticmethod
    def glob(pattern: str) -> List[str]:
        import tensorflow as tf

        return tf.io.gfile.glob(pattern)


def _files(root: str):
    return _RemoteFiles if _is_remote(root) else _LocalFiles


def escape_root(root: str) -> str:
    """The root with its glob metacharacters (`*`, `?`, `[`) escaped, for joining with an
    input pattern: `/data/run[1]` must be taken literally, the pattern below it as a pattern.
    Python's glob, TensorFlow's (fnmatch), Beam's match and TFX's span regex all read `[[]` as
    a literal `[`."""
    scheme, sep, path = root.rpartition("://")
    return scheme + sep + glob.escape(path) if sep else glob.escape(root)


def validate_layout(root: str, pattern: str = "*/*",
                    options: IngestOptions = IngestOptions()) -> Layout:
    """Checks `<root>/<prefix>/<class>/<files>` (or the manifest) before any heavy work.

    Raises one LayoutError listing every problem found, each naming the offending path: missing
    root, images beside the class folders (in no class), fewer than two classes, an empty class
    folder, a folder inside a class folder, a symlink that leads outside the root or nowhere,
    or (with hidden_files="error") a hidden file. Returns the classes and the hidden files
    listed as skipped (hidden_files="skip"). Hidden entries and non-image files (LICENSE.txt)
    beside the class folders are not classes: they are ignored. Class folder names must pass
    class_name_problem; file names must be UTF-8. Local paths are listed without TensorFlow.
    With options.manifest the manifest is checked instead (read_manifest): its bad rows are
    returned as quarantined, row by row.
    """
    return validate_layouts(root, [pattern], options)


def validate_layouts(root: str, patterns: Sequence[str],
                     options: IngestOptions = IngestOptions()) -> Layout:
    """validate_layout over several input patterns (spans, split folders), every problem of
    every pattern in one LayoutError."""
    files = _files(root)
    if not files.isdir(root):
        raise LayoutError(f"data root {root!r} does not exist or is not a directory")
    if options.manifest:
        rows, quarantined = read_manifest(root, options.manifest)
        folders = [manifest_of_pattern(p)[1] for p in patterns]
        if any(folders):
            outside = [r for r in rows if not any(rows_in_folder([r], f) for f in folders)]
            quarantined += [Quarantined(r.path, f"manifest {options.manifest} row {r.row}: "
                                        f"path is in none of the split folders "
                                        f"{', '.join(folders)} (data.split_folders)",
                                        MANIFEST_ROW) for r in outside]
            rows = [r for r in rows if r not in outside]
        classes = sorted({r.label for r in rows})
        if len(classes) < 2:
            raise LayoutError(f"manifest {options.manifest!r} names {len(classes)} class(es) "
                              f"in its usable rows ({', '.join(classes) or 'none'}); a "
                              "classifier needs at least two")
        return Layout(classes, quarantined)
    problems: List[str] = []
    classes, quarantined = set(), []
    for pattern in patterns:
        prefix = class_level_pattern(pattern, options.group_folders)
        parents = (sorted(files.glob(posixpath.join(escape_root(root), prefix))) if prefix
                   else [root])
        parents = [p for p in parents if files.isdir(p)]
        if not parents:
            problems.append(f"no folder under {root!r} matches {prefix!r} (input pattern "
                            f"{pattern!r})")
        for parent in parents:
            found, skipped = _validate_class_parent(parent, root, options, problems)
            classes.update(found)
            quarantined += skipped
    if problems:
        raise LayoutError(problems[0] if len(problems) == 1 else
                          f"{len(problems)} layout problems:\n  " + "\n  ".join(problems))
    return Layout(sorted(classes), quarantined)


@dataclasses.dataclass(frozen=True)
class ManifestRow:
    """One usable row of a manifest: the image's path below the root, label, group, site."""

    row: int            # data row number, 1 for the row after the header
    path: str
    label: str
    group: str = ""
    site: str = ""


def _read_text(path: str) -> str:
    if _is_remote(path):
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
    if _is_remote(path):
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


def _listdir(fs, path: str) -> List[str]:
    try:
        return fs.listdir(path)
    except OSError as err:
        raise LayoutError(f"cannot list {path!r}: {err.strerror or err}") from None


def _validate_class_parent(parent: str, root: str, options: IngestOptions,
                           problems: List[str]) -> Tuple[List[str], List[Quarantined]]:
    """Appends every problem of one class parent folder to problems."""
    fs = _files(root)
    try:
        entries = sorted(_listdir(fs, parent))
    except LayoutError as err:
        problems.append(str(err))
        return [], []
    files = [e for e in entries if not fs.isdir(posixpath.join(parent, e))]
    stray = [e for e in files if os.path.splitext(e)[1].lower() in IMAGE_EXTENSIONS]
    if stray:
        problems.append(
            f"{parent!r} must hold one folder per class, but has images beside them, in no "
            f"class: {', '.join(stray[:10])}{' ...' if len(stray) > 10 else ''}")
    if files:
        logging.info("ignoring files beside the class folders in %s: %s", parent,
                     ", ".join(files[:10]))
    visible = [e for e in entries if not e.startswith(".") and e not in files]
    for name in visible:
        problem = class_name_problem(name)
        if problem:
            problems.append(
                f"class folder '{shown_name(posixpath.join(parent, name))}': the name "
                f"'{shown_name(name)}' {problem}; a class name is printable UTF-8 text of 1 "
                f"to {MAX_CLASS_NAME_CHARS} characters without leading or trailing spaces: "
                "rename the folder")
    folded = {}
    for name in visible:
        same = folded.setdefault(unicodedata.normalize("NFC", name), name)
        if same != name:
            problems.append(f"class folders {posixpath.join(parent, same)!r} and {name!r} "
                            "have the same name in different Unicode forms; merge them")
    if len(visible) < 2:
        problems.append(
            f"{parent!r} has {len(visible)} class folder(s) ({', '.join(visible) or 'none'});"
            " a classifier needs at least two: <root>/<class_name>/<image files>")
    real_root = None if _is_remote(root) else os.path.realpath(root)
    quarantined = []
    for name in visible:
        class_dir = posixpath.join(parent, name)
        try:
            if real_root is not None:
                _check_local_class_dir(class_dir, real_root, problems)
            children = _listdir(fs, class_dir)
        except LayoutError as err:
            problems.append(str(err))
            continue
        undecodable = sorted(shown_name(c) for c in children if not_utf8(c))
        if undecodable:
            problems.append(
                f"class folder {class_dir!r} holds file names that are not UTF-8 "
                f"({', '.join(undecodable[:10])}); rename them")
        folders = [c for c in children
                   if fs.isdir(posixpath.join(class_dir, c)) and not c.startswith(".")]
        if options.group_folders:
            _validate_group_folders(fs, class_dir, children, folders, root, options, problems)
        elif folders:
            problems.append(
                f"class folder {class_dir!r} holds folders ({', '.join(sorted(folders)[:10])}); "
                "images must sit directly in <root>/<class_name>/ (a manifest, data.manifest, "
                f"takes any layout; for one folder per slide set {GROUP_FOLDERS_EXAMPLE})")
        hidden = sorted(c for c in children if c.startswith("."))
        if hidden and options.hidden_files == "error":
            problems.append(
                f"class folder {class_dir!r} holds hidden files ({', '.join(hidden[:10])}); "
                "remove them or set data.hidden_files=skip to list them in the quarantine")
        quarantined += [Quarantined(relative_to_root(posixpath.join(class_dir, h), root),
                                    "hidden file or folder, skipped (data.hidden_files=skip)",
                                    HIDDEN) for h in hidden]
        if len(children) == len(hidden):
            problems.append(f"class folder {class_dir!r} holds no image files")
    return visible, quarantined


def _validate_group_folders(fs, class_dir: str, children: List[str], folders: List[str],
                            root: str, options: IngestOptions, problems: List[str]) -> None:
    """`<class>/<slide>/<tile>`: the class folder holds slide folders only, each holding image
    files (no folders), each file's group (data.group_pattern) its slide folder's name."""
    loose = sorted(c for c in children if not c.startswith(".") and c not in folders)
    if loose:
        problems.append(
            f"class folder {class_dir!r} holds files ({', '.join(loose[:10])}) beside its slide "
            "folders; data.group_pattern names slide folders, so images must sit in "
            "<class>/<slide>/<file>")
    for folder in sorted(folders):
        slide_dir = posixpath.join(class_dir, folder)
        try:
            entries = _listdir(fs, slide_dir)
        except LayoutError as err:
            problems.append(str(err))
            continue
        visible = sorted(e for e in entries if not e.startswith("."))
        nested = [e for e in visible if fs.isdir(posixpath.join(slide_dir, e))]
        if nested:
            problems.append(
                f"slide folder {slide_dir!r} holds folders ({', '.join(nested[:10])}); images "
                "must sit directly in <root>/<class>/<slide>/ (one level of slide folders)")
        images = [e for e in visible if e not in nested]
        if not images:
            problems.append(f"slide folder {slide_dir!r} holds no image files")
            continue
        rel = relative_to_root(posixpath.join(slide_dir, images[0]), root)
        group = search_named(options.group_pattern, GROUP_NAME, rel)
        if group != folder:
            problems.append(
                f"data.group_pattern {options.group_pattern!r} gives {rel!r} the group "
                f"{group!r}, not its slide folder {folder!r}; the pattern is searched in the "
                "path below the data root (with a span or split folder above the classes, "
                "anchor it at the end: '(?P<group>[^/]+)/[^/]+$')")


def _check_local_class_dir(class_dir: str, real_root: str, problems: List[str]) -> None:
    """Refuses symlinks leading outside the root, and broken ones: TFX's input fingerprint
    (taken before the executor runs) cannot stat them."""
    for path in [class_dir] + [os.path.join(class_dir, f) for f in sorted(os.listdir(class_dir))]:
        if not os.path.islink(path):
            continue
        target = os.path.realpath(path)
        if os.path.commonpath([target, real_root]) != real_root:
            problems.append(
                f"{path!r} is a symlink to {target!r}, outside the data root "
                f"{real_root!r}; copy the data in or point the data root at it instead")
        if not os.path.exists(path):
            problems.append(f"{path!r} is a broken symlink: its target {target!r} does not "
                              "exist; restore the target or remove the link")


def image_to_example(data: bytes, relative_path: str,
                     options: IngestOptions = IngestOptions(), label: Optional[str] = None,
                     group: Optional[str] = None,
                     site: Optional[str] = None) -> Union["tf.train.Example", Quarantined]:
    """Decodes, checks and normalises one image; returns a tf.Example or why it was refused.

    Stored bytes are JPEG or PNG, which the serving graph decodes: 8-bit JPEG and PNG that are
    already RGB or grayscale, upright and within max_side pass through untouched; anything else
    (TIFF, WebP, BMP, GIF's first frame, palette, RGBA, CMYK, 16-bit, EXIF-rotated, oversized)
    becomes 8-bit RGB, re-encoded as JPEG when the source was lossy and as PNG otherwise.

    label, group and site: from a manifest row; otherwise the class folder, data.group_pattern
    (or the relative path: a split per image) and data.site_pattern (or ""). The SHA-256 of
    data (the file as read) is kept for the DataGate's duplicate checks.
    """
    from PIL import Image, UnidentifiedImageError

    if group is None:
        group = search_named(options.group_pattern, GROUP_NAME, relative_path)
        if group is None and options.group_pattern:
            return Quarantined(relative_path, f"no group: neither the file name nor the path "
                               f"matches data.group_pattern {options.group_pattern!r}",
                               NO_GROUP)
    if site is None:
        site = search_named(options.site_pattern, SITE_NAME, relative_path) or ""
    example = _image_example(data, relative_path, options)
    if isinstance(example, Quarantined):
        return example
    feature = example.features.feature
    if label is not None:
        feature[features.LABEL_KEY].bytes_list.value[0] = label.encode()
    feature[features.GROUP_KEY].bytes_list.value.append((group or relative_path).encode())
    feature[features.SITE_KEY].bytes_list.value.append(site.encode())
    feature[features.CONTENT_HASH_KEY].bytes_list.value.append(
        hashlib.sha256(data).hexdigest().encode())
    return example


def _image_example(data: bytes, relative_path: str,
                   options: IngestOptions) -> Union["tf.train.Example", Quarantined]:
    from PIL import Image, UnidentifiedImageError

    if not data:
        return Quarantined(relative_path, "empty file (0 bytes)", EMPTY)
    if len(data) > options.max_file_bytes:
        return Quarantined(relative_path, f"file is {len(data)} bytes, above the limit of "
                           f"{options.max_file_bytes} (data.max_image_bytes)", TOO_LARGE)
    Image.MAX_IMAGE_PIXELS = options.max_pixels  # Pillow's own guard: raises above twice this
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > options.max_pixels:
                    return _too_many_pixels(relative_path, width, height, options)
                encoded, source_format, (width, height) = _normalise(img, data, options)
    except UnidentifiedImageError:
        return Quarantined(relative_path, "not an image: Pillow cannot identify the format",
                           NOT_AN_IMAGE)
    except Image.DecompressionBombError as err:
        return Quarantined(relative_path, f"refused as a decompression bomb (limit "
                           f"data.max_image_pixels={options.max_pixels}): {err}", TOO_LARGE)
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        return Quarantined(relative_path, f"truncated or corrupt image: {err}", UNREADABLE)
    return _example(encoded, relative_path, width, height, source_format,
                    options.group_folders)


def _too_many_pixels(relative_path: str, width: int, height: int,
                     options: IngestOptions) -> Quarantined:
    return Quarantined(relative_path,
                       f"image is {width}x{height} = {width * height} pixels, above the limit "
                       f"of {options.max_pixels} (data.max_image_pixels; decompression-bomb "
                       "guard)", TOO_LARGE)


def _normalise(img, data: bytes, options: IngestOptions):
    """(stored bytes, source format, stored size): the original bytes when already fit."""
    from PIL import Image

    source_format = (img.format or "unknown").upper()
    orientation = img.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    oversized = options.max_side and max(img.size) > options.max_side
    passthrough = (not oversized and orientation == 1 and source_format in _PASSTHROUGH_FORMATS
                   and img.mode in _PASSTHROUGH_MODES and _is_8bit(source_format, data))
    size = img.size
    if oversized and source_format in ("JPEG", "MPO"):
        img.draft("RGB", _fit(img.size, options.max_side))  # decodes at a reduced scale
    elif passthrough and source_format == "JPEG":
        # Only the check is needed: a 1/8-scale decode still reads every entropy-coded block
        # (truncation fails it the same way) at about 60% of the full decode's cost.
        img.draft(img.mode, (max(1, size[0] // 8), max(1, size[1] // 8)))
    img.load()  # the decode: truncated or corrupt files fail here
    if passthrough:
        return data, _format_name(source_format), size
    rgb = _to_rgb8(img)
    if oversized:
        rgb.thumbnail((options.max_side, options.max_side), Image.Resampling.LANCZOS)
    transpose = _transpose_methods().get(orientation)
    if transpose is not None:
        rgb = rgb.transpose(transpose)
    out = io.BytesIO()
    if source_format in _LOSSY_FORMATS:
        rgb.save(out, format="JPEG", quality=options.jpeg_quality)
    else:
        rgb.save(out, format="PNG")
    return out.getvalue(), _format_name(source_format), rgb.size


def _fit(size: Tuple[int, int], max_side: int) -> Tuple[int, int]:
    scale = max_side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _is_8bit(source_format: str, data: bytes) -> bool:
    """Pillow opens 48-bit PNGs as mode RGB; the IHDR bit depth tells them apart."""
    return source_format != "PNG" or data[_PNG_BIT_DEPTH_OFFSET] == 8


def _transpose_methods():
    """EXIF orientation -> the Pillow transpose that makes the image upright."""
    from PIL import Image

    t = Image.Transpose
    return {2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE,
            6: t.ROTATE_270, 7: t.TRANSVERSE, 8: t.ROTATE_90}


def _format_name(pillow_format: str) -> str:
    return {"MPO": "jpeg"}.get(pillow_format, pillow_format.lower())


def _to_rgb8(img):
    """8-bit RGB from any Pillow mode; 16-bit and float images are scaled, not clipped;
    transparent pixels are laid on white."""
    from PIL import Image
    import numpy as np

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(array.max()), 1.0)
        array = np.clip(array / top * 255.0, 0, 255).astype(np.uint8)
        img = Image.fromarray(array, mode="L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            img.mode == "P" and "transparency" in img.info):
        background = Image.new("RGB", img.size, (255, 255, 255))
        rgba = img.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def _example(encoded: bytes, relative_path: str, width: int, height: int,
             source_format: str, group_folders: bool = False) -> "tf.train.Example":
    import tensorflow as tf

    # Filled in place: building each Feature first and passing it in copies it (the image
    # bytes included) once more, 2-3x the time of this for the ~60 KB flower JPEGs.
    example = tf.train.Example()
    feature = example.features.feature
    feature[features.IMAGE_KEY].bytes_list.value.append(encoded)
    feature[features.LABEL_KEY].bytes_list.value.append(
        label_of(relative_path, group_folders).encode())
    feature[features.PATH_KEY].bytes_list.value.append(relative_path.encode())
    feature[features.HEIGHT_KEY].int64_list.value.append(height)
    feature[features.WIDTH_KEY].int64_list.value.append(width)
    feature[features.FORMAT_KEY].bytes_list.value.append(source_format.encode())
    return example


def example_or_quarantine(path: str, root: str, options: IngestOptions,
                          row: Optional["ManifestRow"] = None
                          ) -> Optional[Union["tf.train.Example", Quarantined]]:
    """Reads path and converts it. None for hidden files: validate_layout accounts for them
    (it refuses them or lists them as skipped). row: the manifest row naming the file (its
    label, group and site)."""
    import tensorflow as tf

    rel = relative_to_root(path, root)
    if row is None and is_hidden(rel):
        return None
    try:
        if _is_remote(path):
            with tf.io.gfile.GFile(path, "rb") as f:
                data = f.read()
        else:  # checked before opening: opening a named pipe blocks
            if not stat.S_ISREG(os.stat(path).st_mode):
                return Quarantined(rel, "not a regular file (a pipe, socket or device)",
                                   UNREADABLE)
            with open(path, "rb") as f:  # a fifth of GFile's cost per image
                data = f.read()
    except (OSError, tf.errors.OpError) as err:
        return Quarantined(rel, f"could not read file: {err}", UNREADABLE)
    if row is None:
        return image_to_example(data, rel, options)
    return image_to_example(data, rel, options, label=row.label, group=row.group or None,
                            site=row.site)


def count_files_by_class(root: str, pattern: str,
                         group_folders: bool = False) -> Dict[str, int]:
    """Visible files per class folder matched by pattern: a listing, nothing is read."""
    import tensorflow as tf

    counts: Dict[str, int] = {}
    for path in tf.io.gfile.glob(posixpath.join(escape_root(root), pattern)):
        rel = relative_to_root(path, root)
        if not is_hidden(rel) and not tf.io.gfile.isdir(path):
            label = label_of(rel, group_folders)
            counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def any_span(pattern: str) -> str:
    """The pattern with its {SPAN}, {VERSION} and date specs as `*`: every span's folders, for
    checking the layout before TFX's driver has resolved which span is the newest."""
    return re.sub(r"\{[A-Z]+(:\d+)?\}", "*", pattern)


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


def split_patterns(input_pattern: str, split_folders: Sequence[str],
                   manifest: str = "", group_folders: bool = False) -> List[Tuple[str, str]]:
    """(split name, pattern) per input split: one "images" split, or the user's own folders
    (train, eval[, test], in that order) placed just above the class level. With a manifest,
    its file is the one input (TFX fingerprints it; the images are the rows)."""
    if manifest and split_folders:
        # train/../tiles.csv: the manifest (what TFX fingerprints), for the rows in train/
        return [(name, manifest_split_pattern(folder, manifest))
                for name, folder in zip(("train", "eval", "test"), split_folders)]
    if manifest:
        return [("images", manifest)]
    if not split_folders:
        return [("images", input_pattern)]
    prefix = class_level_pattern(input_pattern, group_folders)
    return [(name, posixpath.join(prefix, folder, "*/*/*" if group_folders else "*/*"))
            for name, folder in zip(("train", "eval", "test"), split_folders)]
