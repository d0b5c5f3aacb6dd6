"""Checks the data root's layout and finds its classes and per-split input patterns before any
image is read, so a bad layout fails fast with every offending path in one LayoutError."""
import dataclasses
import glob
import logging
import os
import posixpath
import re
import unicodedata
from typing import Dict, List, Sequence, Tuple

from inception_retrain.components.image_example_gen.class_names import (
    MAX_CLASS_NAME_CHARS,
    class_name_problem,
    not_utf8,
    shown_name,
)
from inception_retrain.components.image_example_gen.ingest import (
    GROUP_NAME,
    HIDDEN,
    MANIFEST_ROW,
    IngestOptions,
    LayoutError,
    Quarantined,
    is_hidden,
    is_remote,
    label_of,
    relative_to_root,
    search_named,
)
from inception_retrain.components.image_example_gen.manifest import (
    manifest_of_pattern,
    manifest_split_pattern,
    read_manifest,
    rows_in_folder,
)

# Files with these extensions beside the class folders are misplaced images (a layout error);
# other files there (LICENSE.txt, README.md) are documentation and are ignored.
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp",
                    ".svs", ".ndpi", ".mrxs", ".scn"}  # with whole-slide images
# How to declare `<class>/<slide>/<tile>` folders, quoted in layout errors.
GROUP_FOLDERS_EXAMPLE = ("data.input_pattern '*/*/*' and data.group_pattern "
                         "'^[^/]+/(?P<group>[^/]+)/' for <class>/<slide>/<tile>")


@dataclasses.dataclass(frozen=True)
class Layout:
    """What validate_layout found: the class names, and files already accounted for."""

    classes: List[str]
    quarantined: List[Quarantined]


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
    return _RemoteFiles if is_remote(root) else _LocalFiles


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
    real_root = None if is_remote(root) else os.path.realpath(root)
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
        folders = [c for c in children if c not in mirax_data_folders(children)
                   and fs.isdir(posixpath.join(class_dir, c)) and not c.startswith(".")]
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


def mirax_data_folders(names: Sequence[str]) -> set:
    """The names among a folder's entries that are the data folder of a MIRAX slide beside
    them (`slide.mrxs` keeps its pixels in `slide/`, which OpenSlide reads with it): part of the
    slide, not a folder of images."""
    return {name[:-len(".mrxs")] for name in names if name.lower().endswith(".mrxs")}


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
