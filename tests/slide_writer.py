"""Writes small synthetic whole-slide images as tiled pyramidal TIFF (tifffile) that OpenSlide
reads as generic-tiff: 256 px tiles, each level a reduced-resolution page, zlib-compressed."""
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

GLASS = (236, 236, 240)   # near-white, unsaturated background
STAINS = {"a": (190, 70, 150), "b": (120, 60, 170), "c": (200, 110, 90)}  # tissue colour per class


def slide_pixels(size: Tuple[int, int], tissue: Sequence[Tuple[int, int, int, int]],
                 colour=(190, 70, 150), seed: int = 0) -> np.ndarray:
    """(height, width) RGB glass with tissue rectangles (x, y, width, height) of colour, a
    little noise so tiles differ."""
    height, width = size
    rng = np.random.default_rng(seed)
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = GLASS
    for x, y, w, h in tissue:
        noise = rng.integers(-12, 13, size=(h, w, 1))
        pixels[y:y + h, x:x + w] = np.clip(np.array(colour) + noise, 0, 255)
    return pixels


def write_slide(path: Path, pixels: np.ndarray, mpp: Optional[float] = 0.5,
                levels: int = 4) -> Path:
    """A pyramid of `levels` levels (each half the previous) with the resolution tags of mpp
    um/px (None: no resolution, as some scanners' exports)."""
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    with tifffile.TiffWriter(path) as writer:
        level = pixels
        for i in range(levels):
            extra = {}
            if mpp is not None:
                per_cm = 1e4 / (mpp * 2 ** i)
                extra = {"resolution": (per_cm, per_cm), "resolutionunit": "CENTIMETER"}
            writer.write(level, tile=(256, 256), photometric="rgb", compression="zlib",
                         subfiletype=1 if i else 0, **extra)
            level = level[::2, ::2]
    return path


def truncate(path: Path) -> Path:
    """Cuts the file short in the middle of its last level's tiles: the directories survive
    (tifffile writes each before its tiles), so OpenSlide still detects a tiled TIFF."""
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[-1]
        cut = page.dataoffsets[0] + page.databytecounts[0] // 2
    path.write_bytes(path.read_bytes()[:cut])
    return path


def class_slides(root: Path, classes: Sequence[str] = ("a", "b", "c"), per_class: int = 3,
                 size: Tuple[int, int] = (3072, 4096)) -> int:
    """per_class slides per class under root/<class>/<slide>.tiff, tissue on about 10 % of
    each (two blocks in different places); returns the tissue tiles expected at the defaults
    (256 px at 0.5 um/px: aligned 256-px blocks, one tile each)."""
    height, width = size
    expected = 0
    for c, name in enumerate(classes):
        for i in range(per_class):
            blocks = [(256 * (1 + i), 256 * (1 + c), 768, 512),
                      (width - 256 * (4 + i), height - 256 * 3, 512, 512)]
            expected += sum(w // 256 * (h // 256) for _, _, w, h in blocks)
            write_slide(root / name / f"{name}{i}.tiff",
                        slide_pixels(size, blocks, STAINS.get(name, STAINS["a"]), seed=c * 10 + i))
    return expected
