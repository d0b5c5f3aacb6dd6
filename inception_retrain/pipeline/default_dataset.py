"""The embedded default dataset: synthetic, histology-like tissue tiles drawn from a fixed seed.

Four classes (dense_nuclei, sparse_nuclei, stroma, adipose), 60 JPEG tiles each, 96 to 160 px,
generated with Pillow in a second or two. 60, so that the stratified 70/20/10 split gives each
class 12 eval images: above the Evaluator's default minimum evidence of 10 per class. They stand in for real microscopy so a fresh clone runs the
whole pipeline offline; they say nothing about accuracy on real tissue.
"""
import contextlib
import os
import random
import tempfile
from typing import TYPE_CHECKING, Callable, Dict, Iterator

if TYPE_CHECKING:
    from PIL import Image

CLASSES = ("dense_nuclei", "sparse_nuclei", "stroma", "adipose")
IMAGES_PER_CLASS = 60
_VERSION = "1"  # bump when the drawing changes so cached copies are regenerated
DIRECTORY = "default_dataset"  # the folder under the work dir that `run` generates it in


def _canvas(rng: random.Random, background):
    from PIL import Image

    size = rng.randint(96, 160)
    jitter = tuple(max(0, min(255, c + rng.randint(-12, 12))) for c in background)
    return Image.new("RGB", (size, size), jitter)


def _nuclei(rng: random.Random, count_range) -> "Image.Image":
    from PIL import ImageDraw

    img = _canvas(rng, (236, 180, 205))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(*count_range)):
        x, y, r = rng.uniform(0, img.width), rng.uniform(0, img.height), rng.uniform(3, 7)
        shade = rng.randint(60, 110)
        draw.ellipse([x - r, y - r * rng.uniform(0.7, 1.0), x + r, y + r],
                     fill=(shade, 40, shade + 70))
    return img


def _stroma(rng: random.Random):
    import math

    from PIL import ImageDraw

    img = _canvas(rng, (245, 200, 215))
    draw = ImageDraw.Draw(img)
    angle, spacing = rng.uniform(0, math.pi), rng.uniform(6, 10)
    dx, dy = math.cos(angle), math.sin(angle)
    for k in range(-40, 40):
        offset, wave = k * spacing, rng.uniform(2, 5)
        points = []
        for t in range(-200, 200, 8):
            w = wave * math.sin(t / 15.0)
            points.append((img.width / 2 + t * dx - (offset + w) * dy,
                           img.height / 2 + t * dy + (offset + w) * dx))
        draw.line(points, fill=(200, rng.randint(40, 80), 110), width=3)
    return img


def _adipose(rng: random.Random):
    from PIL import ImageDraw

    img = _canvas(rng, (250, 246, 248))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(6, 14)):
        x, y, r = rng.uniform(0, img.width), rng.uniform(0, img.height), rng.uniform(12, 30)
        draw.ellipse([x - r, y - r, x + r, y + r], outline=(215, 150, 180), width=2)
    return img


_DRAW: Dict[str, Callable] = {
    "dense_nuclei": lambda rng: _nuclei(rng, (60, 110)),
    "sparse_nuclei": lambda rng: _nuclei(rng, (4, 12)),
    "stroma": _stroma,
    "adipose": _adipose,
}


def _marker(directory: str, images_per_class: int) -> str:
    """The file that says directory holds a complete copy: beside it, not inside, so the layout
    check never sees it as a stray file among the class folders."""
    parent, name = os.path.split(os.path.normpath(directory))
    return os.path.join(parent, f".{name}.generated-v{_VERSION}-{images_per_class}")


def is_complete(directory: str, images_per_class: int = IMAGES_PER_CLASS) -> bool:
    """True when directory holds a finished copy of this version of the dataset."""
    return os.path.exists(_marker(directory, images_per_class))


def ensure_default_dataset(directory: str, images_per_class: int = IMAGES_PER_CLASS) -> str:
    """Writes the dataset into directory once (same seed, same bytes) and returns the path."""
    if is_complete(directory, images_per_class):
        return directory
    rng = random.Random(20261127)
    for name in CLASSES:
        class_dir = os.path.join(directory, name)
        os.makedirs(class_dir, exist_ok=True)
        for index in range(images_per_class):
            _DRAW[name](rng).save(os.path.join(class_dir, f"{name}_{index:03d}.jpg"),
                                  quality=90)
    # The marker of copies written before it moved beside the folder: a stray file inside.
    inside = os.path.join(directory, f".generated-v{_VERSION}-{images_per_class}")
    if os.path.exists(inside):
        os.remove(inside)
    open(_marker(directory, images_per_class), "w").close()
    return directory


@contextlib.contextmanager
def read_only_copy(work_dir: str) -> Iterator[str]:
    """The dataset for a command that must leave no trace (`config`, `schema`): the work dir's
    copy when a run has written it, else one generated in a temporary folder removed on exit."""
    existing = os.path.join(work_dir, DIRECTORY)
    if is_complete(existing):
        yield existing
        return
    with tempfile.TemporaryDirectory(prefix="inception-retrain-") as scratch:
        yield ensure_default_dataset(os.path.join(scratch, DIRECTORY))
