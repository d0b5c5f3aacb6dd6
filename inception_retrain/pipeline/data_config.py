"""The `data.*` section of the configuration: where the images are, how they are split and
how the DataGate judges them. No TensorFlow import here."""
import dataclasses
import posixpath
from typing import Sequence, Tuple

from inception_retrain.components.data_gate.thresholds import GateThresholds
from inception_retrain.components.image_example_gen.ingest import IngestOptions
from inception_retrain.pipeline.config_values import ConfigError, nearest_choice

_INGEST = IngestOptions()  # the ingest limits' defaults, written once in IngestOptions


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where the images are and how they are split (DataConfig's keys before the gate's)."""

    root: str = ""                        # <root>/<class_name>/<image files>; "" = embedded default
    train_percent: int = 70
    eval_percent: int = 20
    test_percent: int = 10
    input_pattern: str = "*/*"            # <class>/<file> below root; "span-{SPAN}/*/*": spans
    split_folders: Tuple[str, ...] = ()   # the user's own train, eval[, test] folders: train val
    hidden_files: str = _INGEST.hidden_files  # error | skip (each listed in the quarantine)
    max_image_bytes: int = _INGEST.max_file_bytes
    max_image_pixels: int = _INGEST.max_pixels  # refused above this (decompression bombs)
    max_image_side: int = _INGEST.max_side      # downscaled to this longest side; 0 = keep all
    group_pattern: str = _INGEST.group_pattern  # regex with (?P<group>...): the slide of a tile
    site_pattern: str = _INGEST.site_pattern    # regex with (?P<site>...): the lab of an image
    manifest: str = _INGEST.manifest            # CSV below root (path,label[,group][,site])
    slide_tile_um: float = _INGEST.slide_tile_um        # whole-slide tiles: side in micrometres
    slide_tile_px: int = _INGEST.slide_tile_px          # stored side in pixels (256 at 0.5 um/px)
    slide_stride_um: float = _INGEST.slide_stride_um    # tile grid step; 0 = the tile side
    slide_min_tissue: float = _INGEST.slide_min_tissue  # tiles with less tissue are skipped
    slide_default_mpp: float = _INGEST.slide_default_mpp  # for slides stating none; 0 = refuse
    slide_min_sharpness: float = _INGEST.slide_min_sharpness  # blurrier tiles dropped; 0 = off


@dataclasses.dataclass(frozen=True)
class DataConfig(GateThresholds, DataSource):
    """Where the images are and how they are split and gated. The gate's rules are
    GateThresholds' fields (declared there once, keys `data.<rule>`); listing GateThresholds
    first puts them after DataSource's keys (dataclasses order fields base class first)."""

    def __post_init__(self):
        splits = (self.train_percent, self.eval_percent, self.test_percent)
        if any(p < 0 for p in splits) or sum(splits) != 100:
            raise ConfigError(f"data.train_percent + eval_percent + test_percent must be "
                              f"non-negative and add up to 100, got {splits}")
        if self.train_percent == 0 or self.eval_percent == 0:
            raise ConfigError("data.train_percent and data.eval_percent must be above 0")
        self._check_ingest_keys()
        problems = self.problems("data.", nearest_choice)
        if problems:
            raise ConfigError(problems[0])

    def _check_ingest_keys(self):
        if len(self.input_pattern.strip("/").split("/")) < 2:
            raise ConfigError("data.input_pattern must end with <class folder>/<file>, e.g. "
                              f"'*/*' or 'span-{{SPAN}}/*/*', got {self.input_pattern!r}")
        if self.split_folders and len(self.split_folders) not in (2, 3):
            raise ConfigError("data.split_folders names the train, eval and optional test "
                              f"folders, e.g. 'train val test', got {self.split_folders!r}")
        _check_split_folders(self.split_folders)
        choices = {"hidden_files": ("error", "skip")}
        from inception_retrain.components.image_example_gen.ingest import (
            pattern_problem,
        )

        for key, name in (("group_pattern", "group"), ("site_pattern", "site")):
            problem = pattern_problem(key, getattr(self, key), name)
            if problem:
                raise ConfigError(problem)
        if self.manifest:
            normal = posixpath.normpath(self.manifest)
            if (normal.startswith(("/", "../")) or normal == ".." or "://" in self.manifest
                    or any(c in self.manifest for c in "*?[{")):
                raise ConfigError("data.manifest must be a CSV file below the data root, "
                                  f"without wildcards, e.g. tiles.csv, got {self.manifest!r}")
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"data.{key} must be one of {', '.join(allowed)}, "
                                  f"got {getattr(self, key)!r}"
                                  f"{nearest_choice(getattr(self, key), allowed)}")
        for key in ("max_image_bytes", "max_image_pixels"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key} must be at least 1, got {getattr(self, key)}")
        if self.max_image_side < 0:
            raise ConfigError(f"data.max_image_side must be 0 (off) or more, "
                              f"got {self.max_image_side}")
        for key in ("slide_tile_um", "slide_tile_px"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"data.{key} must be above 0, got {getattr(self, key)}")
        for key in ("slide_stride_um", "slide_default_mpp", "slide_min_sharpness"):
            if getattr(self, key) < 0:
                raise ConfigError(f"data.{key} must be 0 (off) or more, "
                                  f"got {getattr(self, key)}")
        if not 0 <= self.slide_min_tissue <= 1:
            raise ConfigError(f"data.slide_min_tissue must be in [0, 1], "
                              f"got {self.slide_min_tissue}")

    def ingest_options(self) -> IngestOptions:
        """Per-image limits and hidden-file policy, as ImageExampleGen and preflight use them."""
        return IngestOptions(max_file_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels,
                             max_side=self.max_image_side, hidden_files=self.hidden_files,
                             group_pattern=self.group_pattern, site_pattern=self.site_pattern,
                             manifest=posixpath.normpath(self.manifest) if self.manifest
                             else "", slide_tile_um=self.slide_tile_um,
                             slide_tile_px=self.slide_tile_px,
                             slide_stride_um=self.slide_stride_um,
                             slide_min_tissue=self.slide_min_tissue,
                             slide_default_mpp=self.slide_default_mpp,
                             slide_min_sharpness=self.slide_min_sharpness)

    @property
    def splits(self) -> Tuple[Tuple[str, int], ...]:
        """(split, percent) of the assigned split; with split_folders, the folders' splits (the
        percentages then do not apply)."""
        if self.split_folders:
            return tuple((name, 0) for name in ("train", "eval", "test")[:len(self.split_folders)])
        named = (("train", self.train_percent), ("eval", self.eval_percent),
                 ("test", self.test_percent))
        return tuple((name, pct) for name, pct in named if pct > 0)


def _check_split_folders(folders: Sequence[str]) -> None:
    """Each split folder its own: the same folder twice (or one inside another) would
    evaluate the model on its training images and bless it on them."""
    names = ("train", "eval", "test")
    parts = []
    for name, folder in zip(names, folders):
        normal = posixpath.normpath(folder.strip()) if folder.strip() else ""
        if normal in ("", ".") or normal.startswith(("/", "../")) or normal == "..":
            raise ConfigError(f"data.split_folders: the {name} folder must be a folder below "
                              f"the data root, got {folder!r}")
        parts.append((name, folder, tuple(normal.split("/"))))
    for i, (name, folder, path) in enumerate(parts):
        for other_name, other, other_path in parts[i + 1:]:
            shorter = min(len(path), len(other_path))
            if path[:shorter] == other_path[:shorter]:
                how = "the same folder" if path == other_path else "nested in each other"
                raise ConfigError(
                    f"data.split_folders: the {name} folder {folder!r} and the {other_name} "
                    f"folder {other!r} are {how}; each split needs its own folder, or the "
                    f"model is evaluated on images it was trained on")
