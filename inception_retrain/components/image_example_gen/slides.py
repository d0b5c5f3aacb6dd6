"""Whole-slide images (Aperio .svs, Hamamatsu .ndpi, MIRAX .mrxs, Leica .scn, tiled pyramidal
TIFF) read with OpenSlide and cut into tiles of a fixed physical size where there is tissue.

Plain Python (numpy, Pillow, OpenSlide; no TensorFlow), so the tiling is testable on its own and
the same code serves ingest and predict. Memory stays flat: only the mask level (the coarsest
level fine enough for the tile grid, a thumbnail) is read whole; tiles are read one by one.
"""
import dataclasses
import io
import math
import os
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from inception_retrain.components import artifact_files
from inception_retrain.components.image_example_gen.ingest import IngestOptions

# Extensions OpenSlide reads; .tif/.tiff are slides only when OpenSlide sees a tiled pyramid.
SLIDE_EXTENSIONS = {".svs", ".ndpi", ".mrxs", ".scn", ".tif", ".tiff"}
_TIFF_EXTENSIONS = {".tif", ".tiff"}
_TIFF_TILE_WIDTH = 322  # the TileWidth tag: a tiled (not stripped) TIFF
SLIDE_FORMAT = "slide"  # a tile's source_format (schema/schema.pbtxt's domain lists it)
# The mask level: at least this many mask pixels per tile side, at most this many pixels whole.
_MASK_PIXELS_PER_TILE = 4
_MASK_MAX_PIXELS = 16_000_000
# Saturation below this is glass whatever Otsu says (a blank slide has no tissue to split off).
_MIN_TISSUE_SATURATION = 0.05
_CM_PER_UNIT = {"centimeter": 1.0, "inch": 2.54}


class SlideError(ValueError):
    """A slide that cannot be tiled; the message names the file and the reason."""

    def __init__(self, message: str, category: str):
        super().__init__(message)
        self.category = category


@dataclasses.dataclass
class SlideAccount:
    """What tiling one slide did, for the data report."""

    slide: str
    mpp: float = 0.0          # microns per level-0 pixel
    level: int = 0            # the pyramid level the tiles were read from
    level_downsample: float = 1.0
    scale: float = 1.0        # level pixels per stored tile pixel (>1: downscaled)
    tiles_kept: int = 0
    background_skipped: int = 0
    dropped_out_of_bounds: int = 0
    outside_regions: int = 0  # with an annotation: tissue tiles in no labelled region
    dropped_blurry: int = 0   # below slide_min_sharpness

    def as_dict(self) -> Dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Tile:
    """One kept tile: its level-0 corner, tissue fraction and RGB pixels (tile_px square)."""

    x: int
    y: int
    tissue: float
    rgb: np.ndarray
    label: str = ""   # the annotated region's class ("" without an annotation)


def has_slide_extension(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in SLIDE_EXTENSIONS


def is_slide(path: str) -> bool:
    """Whether path is tiled as a slide: a slide extension, and for .tif/.tiff a tiled TIFF
    with more than one directory (a pyramid), read from its header with Pillow so a plain
    TIFF tile never goes through OpenSlide and a slide is opened only once, by tile_slide.
    A .tif Pillow cannot parse is a slide, so OpenSlide's error names it at tiling. The header
    is read through the file layer, so a plain TIFF on an object store is not copied for it."""
    from PIL import Image, UnidentifiedImageError

    ext = os.path.splitext(path)[1].lower()
    if ext not in SLIDE_EXTENSIONS:
        return False
    if ext not in _TIFF_EXTENSIONS:
        return True
    try:
        with artifact_files.open_binary(path) as file, Image.open(file) as image:
            return _TIFF_TILE_WIDTH in image.tag_v2 and image.n_frames > 1
    except (UnidentifiedImageError, OSError, AttributeError):
        return True


def open_slide(path: str, name: str):
    """An OpenSlide handle, or SlideError naming the file (truncated, corrupt, unsupported)."""
    import openslide

    try:
        return openslide.OpenSlide(path)
    except (openslide.OpenSlideError, OSError) as err:
        raise SlideError(f"slide {name}: OpenSlide cannot open it (truncated, corrupt or an "
                         f"unsupported format): {err}", "unreadable") from None


def microns_per_pixel(properties, name: str, default_mpp: float = 0.0) -> float:
    """The slide's level-0 microns per pixel: openslide.mpp-x, else the TIFF resolution tags
    (per centimetre or inch), else default_mpp; SlideError when none is known."""
    value = properties.get("openslide.mpp-x")
    if value:
        return float(value)
    unit = _CM_PER_UNIT.get(properties.get("tiff.ResolutionUnit", "").lower())
    resolution = float(properties.get("tiff.XResolution") or 0)
    if unit and resolution > 0:
        return unit * 1e4 / resolution
    if default_mpp > 0:
        return default_mpp
    raise SlideError(f"slide {name}: states no microns-per-pixel (no openslide.mpp-x, no TIFF "
                     "resolution in centimetres or inches), so its tiles have no known physical "
                     "size; set data.slide_default_mpp to the scanner's value to accept it",
                     "no_scale")


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1] (256 bins): the split maximising between-class
    variance."""
    hist, edges = np.histogram(values, bins=256, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist)
    total = weight[-1]
    if total == 0:
        return 1.0
    mean = np.cumsum(hist * centres)
    w0, w1 = weight[:-1], total - weight[:-1]
    valid = (w0 > 0) & (w1 > 0)
    if not valid.any():
        return 1.0
    m0 = mean[:-1] / np.where(w0 > 0, w0, 1)
    m1 = (mean[-1] - mean[:-1]) / np.where(w1 > 0, w1, 1)
    between = np.where(valid, w0 * w1 * (m0 - m1) ** 2, -1)
    return float(edges[1:][np.argmax(between)])


def tissue_mask(rgb: np.ndarray) -> np.ndarray:
    """Tissue (True) vs. glass and background: Otsu on HSV saturation, never below
    _MIN_TISSUE_SATURATION."""
    rgb = rgb.astype(np.float32)
    top = rgb.max(axis=2)
    saturation = np.where(top > 0, (top - rgb.min(axis=2)) / np.maximum(top, 1), 0.0)
    threshold = max(otsu_threshold(saturation), _MIN_TISSUE_SATURATION)
    return saturation > threshold


def _mask_level(slide, tile_l0: float, name: str) -> int:
    """The coarsest level with at least _MASK_PIXELS_PER_TILE pixels per tile side that is
    small enough to read whole."""
    fine_enough = [i for i, d in enumerate(slide.level_downsamples)
                   if d <= tile_l0 / _MASK_PIXELS_PER_TILE] or [0]
    for level in sorted(fine_enough, key=lambda i: -slide.level_downsamples[i]):
        width, height = slide.level_dimensions[level]
        if width * height <= _MASK_MAX_PIXELS:
            return level
    raise SlideError(f"slide {name}: no pyramid level small enough for the tissue mask "
                     f"(finest fitting level is {slide.level_dimensions[fine_enough[-1]]}); "
                     "only slides with a low-resolution level are tiled", "unreadable")


def _read_rgb(slide, location: Tuple[int, int], level: int, size: Tuple[int, int]):
    """read_region as 8-bit RGB with transparent pixels (outside the scanned area) white."""
    from PIL import Image

    rgba = slide.read_region(location, level, size)
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _integral(mask: np.ndarray) -> np.ndarray:
    return np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))


def tile_slide(path: str, name: str, options: IngestOptions = IngestOptions(),
               account: Optional[SlideAccount] = None, annotation: str = "") -> Iterator[Tile]:
    """The slide's tissue tiles, one at a time, filling account as it goes.

    Grid of slide_tile_um tiles every slide_stride_um (both in micrometres, from the slide's
    microns-per-pixel) over level 0; each tile read at the coarsest level not coarser than the
    target scale (slide_tile_um / slide_tile_px um per pixel) and resized to slide_tile_px.
    Tiles reaching past the slide are dropped; tiles with less tissue than slide_min_tissue
    (on the mask) are skipped as background; with slide_min_sharpness, blurry tiles dropped. With an annotation (GeoJSON, slide_regions), a
    tile takes the class of the region holding most of its tissue, and is skipped when that
    share is below slide_min_tissue. Raises SlideError naming the file.
    """
    import openslide
    from PIL import Image

    account = account if account is not None else SlideAccount(name)
    slide = open_slide(path, name)
    try:
        mpp = microns_per_pixel(slide.properties, name, options.slide_default_mpp)
        tile_l0 = options.slide_tile_um / mpp
        stride_l0 = (options.slide_stride_um or options.slide_tile_um) / mpp
        target = tile_l0 / options.slide_tile_px  # level-0 pixels per stored pixel
        level = slide.get_best_level_for_downsample(target * 1.001)
        downsample = slide.level_downsamples[level]
        size_l = max(1, round(tile_l0 / downsample))
        account.mpp, account.level, account.level_downsample = mpp, level, downsample
        account.scale = size_l / options.slide_tile_px
        mask_level = _mask_level(slide, tile_l0, name)
        mask = tissue_mask(np.asarray(_read_rgb(slide, (0, 0), mask_level,
                                                slide.level_dimensions[mask_level])))
        integral = _integral(mask)
        mask_ds = slide.level_downsamples[mask_level]
        regions = _region_integrals(annotation, name, mask, mask_ds)
        width, height = slide.dimensions
        for y, x in _grid(width, height, stride_l0):
            if x + tile_l0 > width + 0.5 or y + tile_l0 > height + 0.5:
                account.dropped_out_of_bounds += 1
                continue
            tissue = _fraction(integral, x / mask_ds, y / mask_ds, tile_l0 / mask_ds)
            if tissue < options.slide_min_tissue:
                account.background_skipped += 1
                continue
            label = ""
            if regions:
                share, label = max((_fraction(r, x / mask_ds, y / mask_ds, tile_l0 / mask_ds), k)
                                   for k, r in regions.items())
                if share < options.slide_min_tissue:
                    account.outside_regions += 1
                    continue
            image = _read_rgb(slide, (x, y), level, (size_l, size_l))
            if image.size != (options.slide_tile_px, options.slide_tile_px):
                image = image.resize((options.slide_tile_px, options.slide_tile_px),
                                     Image.Resampling.LANCZOS)
            pixels = np.asarray(image)
            if options.slide_min_sharpness and sharpness(pixels) < options.slide_min_sharpness:
                account.dropped_blurry += 1
                continue
            account.tiles_kept += 1
            yield Tile(x, y, tissue, pixels, label)
    except openslide.OpenSlideError as err:
        raise SlideError(f"slide {name}: OpenSlide failed reading it (truncated or corrupt): "
                         f"{err}", "unreadable") from None
    finally:
        slide.close()


def _region_integrals(annotation: str, name: str, mask: np.ndarray,
                      mask_ds: float) -> Dict[str, np.ndarray]:
    """{class: integral image of tissue inside its regions} ({} without an annotation)."""
    if not annotation:
        return {}
    from inception_retrain.components.image_example_gen import slide_regions

    try:
        regions = slide_regions.read_regions(annotation, os.path.splitext(name)[0] + ".geojson")
    except slide_regions.RegionError as err:
        raise SlideError(str(err), "unreadable") from None
    return {label: _integral(region & mask) for label, region in
            slide_regions.region_masks(regions, mask.shape, mask_ds).items()}


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the tile's grey levels: near 0 for an
    out-of-focus tile, large where there are edges and texture."""
    grey = rgb.astype(np.float32).mean(axis=2)
    laplacian = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
                 - 4 * grey[1:-1, 1:-1])
    return float(laplacian.var())


def _grid(width: int, height: int, stride: float) -> List[Tuple[int, int]]:
    """Level-0 (y, x) corners of the tile grid, row by row, covering the whole slide."""
    rows = math.ceil(height / stride)
    cols = math.ceil(width / stride)
    return [(round(r * stride), round(c * stride)) for r in range(rows) for c in range(cols)]


def _fraction(integral: np.ndarray, x: float, y: float, side: float) -> float:
    """Mean of the mask over a square in mask pixels (at least one pixel), from its integral
    image."""
    rows, cols = integral.shape[0] - 1, integral.shape[1] - 1
    x0, y0 = min(int(x), cols - 1), min(int(y), rows - 1)
    x1 = min(cols, max(x0 + 1, round(x + side)))
    y1 = min(rows, max(y0 + 1, round(y + side)))
    total = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return float(total) / ((x1 - x0) * (y1 - y0))


def tile_name(slide_name: str, tile: Tile) -> str:
    """A tile's relative path: the slide's, with its level-0 corner, `<class>/s.svs#x=..,y=..`."""
    return f"{slide_name}#x={tile.x},y={tile.y}"


def encode_png(rgb: np.ndarray) -> bytes:
    """A tile as PNG (lossless: the slide's own compression is not compounded)."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG", compress_level=1)
    return out.getvalue()
