"""The names every ingest step shares (IngestOptions, LayoutError, the Quarantined record and
its reasons, path and pattern rules), free of Beam, TFX and TensorFlow, so that layout.py,
manifest.py and conversion.py build on them without an import cycle."""
import dataclasses
import os
import posixpath
import re
from typing import Dict, Optional

HIDDEN_POLICIES = ("error", "skip")

# Quarantine categories; "hidden" files are skipped by choice and are not counted as bad.
EMPTY = "empty"
TOO_LARGE = "too_large"
NOT_AN_IMAGE = "not_an_image"
UNREADABLE = "unreadable"
HIDDEN = "hidden"
NO_GROUP = "no_group"          # the path does not match data.group_pattern
MANIFEST_ROW = "manifest_row"  # a manifest row that names no usable image
NO_SCALE = "no_scale"          # a slide that states no microns-per-pixel
NOT_BAD = (HIDDEN,)
GROUP_NAME = "group"           # the named groups of data.group_pattern and data.site_pattern
SITE_NAME = "site"
# A `<class>/<slide>/<tile>` path: a group_pattern capturing its "slide" names group folders.
GROUP_FOLDERS_PROBE = "class/slide/tile.png"


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
    # Whole-slide images (slides.py): tiles of slide_tile_um micrometres, stored at
    # slide_tile_px pixels (256 px at 0.5 um/px), every slide_stride_um (0: the tile size),
    # kept with at least slide_min_tissue tissue; slide_default_mpp for slides that state no
    # microns-per-pixel (0: such slides are quarantined).
    slide_tile_um: float = 128.0
    slide_tile_px: int = 256
    slide_stride_um: float = 0.0
    slide_min_tissue: float = 0.5
    slide_default_mpp: float = 0.0
    slide_min_sharpness: float = 0.0  # variance of the tile's Laplacian; below: blurry (0: off)

    def __post_init__(self):
        if self.max_file_bytes < 1 or self.max_pixels < 1 or self.max_side < 0:
            raise ValueError(f"ingest limits must be positive: {self}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.hidden_files not in HIDDEN_POLICIES:
            raise ValueError(f"hidden_files must be one of {HIDDEN_POLICIES}, "
                             f"got {self.hidden_files!r}")
        if (self.slide_tile_um <= 0 or self.slide_tile_px < 1 or self.slide_stride_um < 0
                or self.slide_default_mpp < 0 or self.slide_min_sharpness < 0 or not 0 <= self.slide_min_tissue <= 1):
            raise ValueError(f"slide tiling settings out of range: {self}")
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


def is_hidden(relative_path: str) -> bool:
    return any(part.startswith(".") for part in relative_path.split("/"))


def is_remote(path: str) -> bool:
    return "://" in path


def relative_to_root(path: str, root: str) -> str:
    """Path below root with forward slashes on every platform, e.g. `<class>/<file>`."""
    if is_remote(path):
        return path[len(root.rstrip("/")) + 1:]
    return os.path.relpath(path, root).replace(os.sep, "/")


def label_of(relative_path: str, group_folders: bool = False) -> str:
    """The class of a file: the name of the folder it sits in ("" at the top level); with
    group_folders (`<class>/<slide>/<tile>`) the folder above its slide folder."""
    parts = relative_path.split("/")
    level = 3 if group_folders else 2
    return parts[-level] if len(parts) >= level else ""
