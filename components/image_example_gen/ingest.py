"""Plain functions that turn image files into tf.Examples or quarantine records.

No Beam and no TFX here, so each rule is testable on its own; the executor maps them over files.
"""
import dataclasses
import io
import os
import posixpath
from typing import List, Optional, Sequence, Union

from components import features

# Formats TensorFlow's decode ops read; their bytes are kept as they are when already RGB-ready.
_PASSTHROUGH_FORMATS = {"JPEG", "PNG"}
_PASSTHROUGH_MODES = {"RGB", "L"}
_EXIF_ORIENTATION_TAG = 0x0112


class LayoutError(ValueError):
    """The data root does not have the `<root>/<class_name>/<image files>` layout."""


@dataclasses.dataclass(frozen=True)
class IngestOptions:
    """Limits applied to every image; refused images are quarantined with the reason."""

    max_pixels: int = 50_000_000        # width * height above this is refused (decompression bombs)
    max_file_bytes: int = 200_000_000


@dataclasses.dataclass(frozen=True)
class Quarantined:
    """A file that could not become an example, and why."""

    relative_path: str
    reason: str

    def as_dict(self):
        return {"relative_path": self.relative_path, "reason": self.reason}


def _is_hidden(relative_path: str) -> bool:
    return any(part.startswith(".") for part in relative_path.split("/"))


def _is_remote(path: str) -> bool:
    return "://" in path


def relative_to_root(path: str, root: str) -> str:
    """`<class>/<file>` for a file under root, with forward slashes on every platform."""
    rel = os.path.relpath(path, root) if not _is_remote(path) else path[len(root.rstrip("/")) + 1:]
    return rel.replace(os.sep, "/")


def validate_layout(root: str) -> List[str]:
    """Checks `<root>/<class>/<files>` before any heavy work and returns the class names.

    Raises LayoutError naming the offending path: missing root, stray files at the root, fewer
    than two classes, an empty class folder, or a symlink that leads outside the root.
    """
    import tensorflow as tf  # gfile reads local paths and gs:// alike

    if not tf.io.gfile.isdir(root):
        raise LayoutError(f"data root {root!r} does not exist or is not a directory")
    entries = sorted(e.rstrip("/") for e in tf.io.gfile.listdir(root))
    visible = [e for e in entries if not e.startswith(".")]
    stray = [e for e in visible if not tf.io.gfile.isdir(posixpath.join(root, e))]
    if stray:
        raise LayoutError(
            f"data root {root!r} must hold only one folder per class, but has files at its top "
            f"level: {', '.join(stray[:10])}{' ...' if len(stray) > 10 else ''}")
    classes = visible
    if len(classes) < 2:
        raise LayoutError(
            f"data root {root!r} has {len(classes)} class folder(s) ({', '.join(classes) or 'none'});"
            " a classifier needs at least two: <root>/<class_name>/<image files>")
    real_root = None if _is_remote(root) else os.path.realpath(root)
    for name in classes:
        class_dir = posixpath.join(root, name)
        if real_root is not None:
            _refuse_escaping_symlinks(class_dir, real_root)
        files = [f for f in tf.io.gfile.listdir(class_dir)
                 if not f.startswith(".") and not f.endswith("/")]
        if not files:
            raise LayoutError(f"class folder {class_dir!r} holds no image files")
    return classes


def _refuse_escaping_symlinks(class_dir: str, real_root: str) -> None:
    for path in [class_dir] + [os.path.join(class_dir, f) for f in os.listdir(class_dir)]:
        if os.path.islink(path):
            target = os.path.realpath(path)
            if os.path.commonpath([target, real_root]) != real_root:
                raise LayoutError(
                    f"{path!r} is a symlink to {target!r}, outside the data root {real_root!r}; "
                    "copy the data in or point the data root at it instead")


def wanted_file(relative_path: str) -> bool:
    """Files the ExampleGen reads: `<class>/<file>`, nothing hidden."""
    return relative_path.count("/") == 1 and not _is_hidden(relative_path)


def image_to_example(data: bytes, relative_path: str,
                     options: IngestOptions = IngestOptions()) -> Union["tf.train.Example",
                                                                        Quarantined]:
    """Decodes, checks and normalises one image; returns a tf.Example or why it was refused.

    Stored bytes are JPEG or PNG, which the serving graph decodes: JPEG and PNG that are already
    RGB or grayscale and upright pass through untouched; anything else (TIFF, WebP, BMP, GIF,
    palette, RGBA, CMYK, 16-bit, EXIF-rotated) becomes an 8-bit RGB PNG.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError
    import tensorflow as tf

    label = relative_path.split("/")[0]
    if not data:
        return Quarantined(relative_path, "empty file (0 bytes)")
    if len(data) > options.max_file_bytes:
        return Quarantined(relative_path,
                           f"file is {len(data)} bytes, above the limit of {options.max_file_bytes}")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > options.max_pixels:
                return Quarantined(relative_path, f"image is {width}x{height} pixels, above the "
                                                  f"limit of {options.max_pixels} pixels")
            source_format = (img.format or "unknown").upper()
            img.load()  # forces a full decode: truncated files fail here
            orientation = img.getexif().get(_EXIF_ORIENTATION_TAG, 1)
            if (source_format in _PASSTHROUGH_FORMATS and img.mode in _PASSTHROUGH_MODES
                    and orientation == 1):
                encoded = data
            else:
                rgb = _to_rgb8(ImageOps.exif_transpose(img))
                width, height = rgb.size
                out = io.BytesIO()
                rgb.save(out, format="PNG")
                encoded = out.getvalue()
    except UnidentifiedImageError:
        return Quarantined(relative_path, "not an image Pillow can identify")
    except Image.DecompressionBombError as err:
        return Quarantined(relative_path, f"refused as a decompression bomb: {err}")
    except (OSError, ValueError, SyntaxError) as err:
        return Quarantined(relative_path, f"unreadable image: {err}")

    def _bytes(value: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def _int(value: int):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    return tf.train.Example(features=tf.train.Features(feature={
        features.IMAGE_KEY: _bytes(encoded),
        features.LABEL_KEY: _bytes(label.encode()),
        features.PATH_KEY: _bytes(relative_path.encode()),
        features.HEIGHT_KEY: _int(height),
        features.WIDTH_KEY: _int(width),
        features.FORMAT_KEY: _bytes(_format_name(source_format).encode()),
    }))


def _format_name(pillow_format: str) -> str:
    return {"MPO": "jpeg"}.get(pillow_format, pillow_format.lower())


def _to_rgb8(img):
    """8-bit RGB from any Pillow mode; 16-bit and float images are scaled, not clipped."""
    from PIL import Image
    import numpy as np

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(array.max()), 1.0)
        array = np.clip(array / top * 255.0, 0, 255).astype(np.uint8)
        img = Image.fromarray(array, mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        background = Image.new("RGB", img.size, (255, 255, 255))
        rgba = img.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def list_image_files(root: str, pattern: str) -> List[str]:
    """Files under root matching pattern that the ExampleGen would read, sorted."""
    import tensorflow as tf

    matches = tf.io.gfile.glob(posixpath.join(root, pattern))
    return sorted(p for p in matches
                  if wanted_file(relative_to_root(p, root)) and not tf.io.gfile.isdir(p))


def example_or_quarantine(path: str, root: str,
                          options: IngestOptions) -> Optional[Union["tf.train.Example",
                                                                    Quarantined]]:
    """Reads path and converts it; None for files the layout ignores (hidden, nested)."""
    import tensorflow as tf

    rel = relative_to_root(path, root)
    if not wanted_file(rel):
        return None
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
    except (OSError, tf.errors.OpError) as err:
        return Quarantined(rel, f"could not read file: {err}")
    return image_to_example(data, rel, options)
