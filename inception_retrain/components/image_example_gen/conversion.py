"""Turns one image file into a tf.Example or a Quarantined record saying why not (limits,
decoding, EXIF, normalisation); no Beam and no TFX, so each rule is testable on its own."""
import hashlib
import io
import os
import stat
import warnings
from typing import TYPE_CHECKING, Iterator, Optional, Tuple, Union

from inception_retrain.components import features
from inception_retrain.components.image_example_gen.ingest import (
    EMPTY, GROUP_NAME, NO_GROUP, NO_SCALE, NOT_AN_IMAGE, SITE_NAME, TOO_LARGE, UNREADABLE,
    IngestOptions, Quarantined, is_hidden, is_remote, label_of, relative_to_root, search_named)
from inception_retrain.components.image_example_gen.manifest import ManifestRow
from inception_retrain.components.image_example_gen.slides import (
    SLIDE_FORMAT, SlideAccount, SlideError, encode_png, tile_name, tile_slide)

if TYPE_CHECKING:  # annotations only: TensorFlow is imported where an example is built
    import tensorflow as tf

# Formats TensorFlow's decode ops read; their bytes are kept as they are when already RGB-ready.
_PASSTHROUGH_FORMATS = {"JPEG", "PNG"}
_PASSTHROUGH_MODES = {"RGB", "L"}
# Sources whose pixels are already lossy: re-encoded as JPEG; everything else as lossless PNG.
_LOSSY_FORMATS = {"JPEG", "MPO", "WEBP"}
_EXIF_ORIENTATION_TAG = 0x0112
_PNG_BIT_DEPTH_OFFSET = 24  # 8-byte signature + IHDR length, type, width, height


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
    return _keyed(example, data, label, group or relative_path, site)


def _keyed(example: "tf.train.Example", data: bytes, label: Optional[str], group: str,
           site: str) -> "tf.train.Example":
    """The example with its label (when given), group, site and the SHA-256 of data."""
    feature = example.features.feature
    if label is not None:
        feature[features.LABEL_KEY].bytes_list.value[0] = label.encode()
    feature[features.GROUP_KEY].bytes_list.value.append(group.encode())
    feature[features.SITE_KEY].bytes_list.value.append(site.encode())
    feature[features.CONTENT_HASH_KEY].bytes_list.value.append(
        hashlib.sha256(data).hexdigest().encode())
    return example


def slide_examples(path: str, root: str, options: IngestOptions, row: Optional[ManifestRow],
                   local: Tuple[str, str]
                   ) -> Iterator[Union["tf.train.Example", Quarantined, SlideAccount]]:
    """One slide's tissue tiles as PNG tf.Examples (path `<class>/<slide>#x=..,y=..`, group the
    slide: the manifest row's group, or the slide's path; label the annotated region's class
    when `<slide stem>.geojson` lies beside it), then its SlideAccount; or a
    Quarantined record naming the slide and why it cannot be tiled. local: the (slide,
    annotation) files to read, local copies for a slide on an object store (OpenSlide reads
    local files only); annotation "" when there is none."""
    rel = relative_to_root(path, root)
    label = row.label if row is not None else label_of(rel)
    group = (row.group if row is not None else "") or rel
    site = row.site if row is not None else (
        search_named(options.site_pattern, SITE_NAME, rel) or "")
    account = SlideAccount(rel)
    try:
        for tile in tile_slide(local[0], rel, options, account, local[1]):
            encoded = encode_png(tile.rgb)
            example = _example(encoded, tile_name(rel, tile), options.slide_tile_px,
                               options.slide_tile_px, SLIDE_FORMAT)
            yield _keyed(example, encoded, tile.label or label, group, site)
    except SlideError as err:
        yield Quarantined(rel, str(err), NO_SCALE if err.category == NO_SCALE else UNREADABLE)
        return
    yield account


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
    import numpy as np
    from PIL import Image

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
                          row: Optional[ManifestRow] = None
                          ) -> Optional[Union["tf.train.Example", Quarantined]]:
    """Reads path and converts it. None for hidden files: validate_layout accounts for them
    (it refuses them or lists them as skipped). row: the manifest row naming the file (its
    label, group and site)."""
    import tensorflow as tf

    rel = relative_to_root(path, root)
    if row is None and is_hidden(rel):
        return None
    try:
        if is_remote(path):
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
