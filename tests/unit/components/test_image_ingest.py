"""Image ingest: every format and mode becomes decodable 8-bit RGB, every bad file is quarantined
with its reason, layout errors are caught before any work. Real Pillow images, real Beam."""
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inception_retrain.components import features
from inception_retrain.components.image_example_gen import conversion, ingest, layout

RED, BLUE = (220, 30, 40), (20, 40, 200)


def two_tone(size=(24, 16), mode="RGB"):
    """Left half red, right half blue: orientation and colour are both checkable."""
    img = Image.new("RGB", size, RED)
    img.paste(Image.new("RGB", (size[0] // 2, size[1]), BLUE), (size[0] // 2, 0))
    if mode == "P":
        return img.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    return img.convert(mode) if mode != "RGB" else img


def encode(img, fmt, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (a decompression bomb's signature)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def decoded(example) -> np.ndarray:
    """The stored image as the serving graph decodes it."""
    import tensorflow as tf

    data = example.features.feature[features.IMAGE_KEY].bytes_list.value[0]
    return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()


def feature(example, key):
    value = example.features.feature[key]
    return value.bytes_list.value[0].decode() if value.bytes_list.value else \
        value.int64_list.value[0]


def assert_two_tone(pixels: np.ndarray, size=(24, 16), tolerance=12):
    assert pixels.shape == (size[1], size[0], 3), pixels.shape
    assert pixels.dtype == np.uint8
    left, right = pixels[:, : size[0] // 2 - 2], pixels[:, size[0] // 2 + 2:]
    assert np.abs(left.astype(int) - RED).max() <= tolerance
    assert np.abs(right.astype(int) - BLUE).max() <= tolerance


def _rgba():
    img = two_tone(mode="RGBA")
    img.putpixel((0, 0), (0, 0, 0, 0))  # one transparent pixel: laid on white
    return img


def _gif_two_frames():
    first, second = two_tone(), Image.new("RGB", (24, 16), (0, 255, 0))
    out = io.BytesIO()
    first.save(out, format="GIF", save_all=True, append_images=[second], duration=100)
    return out.getvalue()


GOOD_FORMATS = {
    # name: (bytes, stored format the serving graph gets, source_format feature, tolerance)
    "rgb.jpg": (lambda: encode(two_tone(), "JPEG", quality=95), "jpeg", "jpeg", 12),
    "gray.jpg": (lambda: encode(two_tone(mode="L"), "JPEG", quality=95), "jpeg", "jpeg", None),
    "cmyk.jpg": (lambda: encode(two_tone(mode="CMYK"), "JPEG", quality=95), "jpeg", "jpeg", 16),
    "rgb.png": (lambda: encode(two_tone(), "PNG"), "png", "png", 0),
    "rgba.png": (lambda: encode(_rgba(), "PNG"), "png", "png", 0),
    "palette.png": (lambda: encode(two_tone(mode="P"), "PNG"), "png", "png", 0),
    "first_frame.gif": (_gif_two_frames, "png", "gif", 0),
    "rgb.bmp": (lambda: encode(two_tone(), "BMP"), "png", "bmp", 0),
    "rgb.tif": (lambda: encode(two_tone(), "TIFF", compression="tiff_lzw"), "png", "tiff", 0),
    "cmyk.tif": (lambda: encode(two_tone(mode="CMYK"), "TIFF"), "png", "tiff", 2),
    "lossless.webp": (lambda: encode(two_tone(), "WEBP", lossless=True), "jpeg", "webp", 12),
}


@pytest.mark.parametrize("name", sorted(GOOD_FORMATS))
def test_every_format_becomes_decodable_8bit_rgb(name):
    make, stored, source, tolerance = GOOD_FORMATS[name]
    data = make()
    example = conversion.image_to_example(data, f"red_blue/{name}")
    assert not isinstance(example, ingest.Quarantined), example
    stored_bytes = example.features.feature[features.IMAGE_KEY].bytes_list.value[0]
    assert Image.open(io.BytesIO(stored_bytes)).format == stored.upper()
    assert feature(example, features.FORMAT_KEY) == source
    assert feature(example, features.LABEL_KEY) == "red_blue"
    assert (feature(example, features.WIDTH_KEY), feature(example, features.HEIGHT_KEY)) == (24, 16)
    pixels = decoded(example)
    if tolerance is None:  # grayscale: three equal channels
        assert pixels.shape == (16, 24, 3) and (pixels[..., 0] == pixels[..., 2]).all()
    else:
        if name == "rgba.png":
            assert tuple(pixels[0, 0]) == (255, 255, 255)
            pixels[0, 0] = RED
        assert_two_tone(pixels, tolerance=tolerance)


def test_upright_8bit_jpeg_and_png_are_stored_byte_for_byte():
    for data in (encode(two_tone(), "JPEG"), encode(two_tone(), "PNG"),
                 encode(two_tone(mode="L"), "PNG")):
        example = conversion.image_to_example(data, "c/x")
        assert example.features.feature[features.IMAGE_KEY].bytes_list.value[0] == data


def test_16bit_grayscale_png_is_scaled_to_8bit_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (8, 1))
    data = encode(Image.fromarray(ramp, mode="I;16"), "PNG")
    pixels = decoded(conversion.image_to_example(data, "c/ramp16.png"))
    assert pixels[0, 0, 0] == 0 and pixels[0, -1, 0] == 255
    assert 120 <= pixels[0, 16, 0] <= 135  # mid-ramp is mid-grey, not saturated


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: the viewer rotates 90 degrees clockwise
    stored = two_tone().transpose(Image.Transpose.ROTATE_90)   # 16 x 24, red at the bottom
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    example = conversion.image_to_example(data, "c/rotated.jpg")
    assert (feature(example, features.WIDTH_KEY), feature(example, features.HEIGHT_KEY)) == (24, 16)
    assert_two_tone(decoded(example), tolerance=16)


def test_oversized_image_is_downscaled_to_max_side():
    options = ingest.IngestOptions(max_side=12)
    for fmt in ("JPEG", "PNG"):
        example = conversion.image_to_example(encode(two_tone((48, 32)), fmt), "c/big", options)
        assert (feature(example, features.WIDTH_KEY), feature(example, features.HEIGHT_KEY)) \
            == (12, 8)
        assert decoded(example).shape == (8, 12, 3)


def test_decompression_bomb_is_refused_from_its_header():
    result = conversion.image_to_example(png_header_only(40_000, 40_000), "c/bomb.png")
    assert isinstance(result, ingest.Quarantined) and result.category == ingest.TOO_LARGE
    assert "1600000000 pixels" in result.reason and "data.max_image_pixels" in result.reason


def test_limits_are_configurable():
    data = encode(two_tone((100, 100)), "PNG")
    assert not isinstance(conversion.image_to_example(data, "c/x", ingest.IngestOptions()),
                          ingest.Quarantined)
    by_pixels = conversion.image_to_example(data, "c/x", ingest.IngestOptions(max_pixels=9_999))
    assert by_pixels.category == ingest.TOO_LARGE and "100x100" in by_pixels.reason
    by_bytes = conversion.image_to_example(data, "c/x", ingest.IngestOptions(max_file_bytes=10))
    assert by_bytes.category == ingest.TOO_LARGE and "data.max_image_bytes" in by_bytes.reason


@pytest.mark.parametrize("data,category,words", [
    (b"", ingest.EMPTY, "0 bytes"),
    (b"name,label\nx,y\n", ingest.NOT_AN_IMAGE, "cannot identify"),
    (encode(two_tone((64, 64)), "JPEG")[:300], ingest.UNREADABLE, "truncated"),
    (encode(two_tone((64, 64)), "PNG")[:-40], ingest.UNREADABLE, "truncated"),
])
def test_bad_bytes_are_quarantined_with_reason(data, category, words):
    result = conversion.image_to_example(data, "c/bad")
    assert isinstance(result, ingest.Quarantined)
    assert (result.relative_path, result.category) == ("c/bad", category)
    assert words in result.reason


# ---------------------------------------------------------------- layout


def make_classes(root: Path, files_per_class=2, classes=("a", "b")) -> Path:
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(files_per_class):
            (root / name / f"{i}.png").write_bytes(encode(two_tone(), "PNG"))
    return root


@pytest.mark.parametrize("breakage,words", [
    (lambda root: root / "missing", "does not exist"),
    (lambda root: (root / "stray.JPG").write_text("x") and root, "in no class: stray.JPG"),
    (lambda root: [p.unlink() for p in (root / "b").iterdir()] and root, "holds no image files"),
    (lambda root: [p.unlink() for p in (root / "b").iterdir()] and (root / "b").rmdir() or root,
     "1 class folder(s) (a)"),
    (lambda root: (root / "a" / "nested").mkdir() or root, "holds folders (nested)"),
    (lambda root: (root / "a" / ".DS_Store").write_bytes(b"x") and root,
     "hidden files (.DS_Store)"),
    (lambda root: (root / "a" / "outside.png").symlink_to("/etc/hostname") or root,
     "outside the data root"),
    (lambda root: (root / "c").symlink_to("/tmp", target_is_directory=True) or root,
     "outside the data root"),
    (lambda root: (root / "b" / "moved.png").symlink_to(root / "b" / "gone.png") or root,
     "broken symlink"),
])
def test_layout_errors_name_the_problem(tmp_path, breakage, words):
    root = breakage(make_classes(tmp_path / "data"))
    with pytest.raises(ingest.LayoutError, match=".*") as err:
        layout.validate_layout(str(root))
    assert words in str(err.value)


def test_layout_lists_skipped_hidden_files(tmp_path):
    root = make_classes(tmp_path / "data")
    (root / ".git").mkdir()  # beside the classes: not a class, ignored
    (root / "LICENSE.txt").write_text("CC BY 4.0")  # documentation beside the classes: ignored
    (root / "a" / ".DS_Store").write_bytes(b"x")
    (root / "b" / "inside.png").symlink_to(root / "a" / "0.png")  # a link within the root is fine
    found = layout.validate_layout(str(root), options=ingest.IngestOptions(hidden_files="skip"))
    assert found.classes == ["a", "b"]
    assert [(q.relative_path, q.category) for q in found.quarantined] == [
        ("a/.DS_Store", ingest.HIDDEN)]


def test_a_mirax_slides_data_folder_is_part_of_the_slide_not_a_nested_folder(tmp_path):
    root = make_classes(tmp_path)
    (root / "a" / "slide-1.mrxs").write_bytes(b"x")
    (root / "a" / "slide-1").mkdir()  # MIRAX keeps the slide's pixels here
    (root / "a" / "slide-1" / "Slidedat.ini").write_text("[GENERAL]")
    assert layout.validate_layout(str(root)).classes == ["a", "b"]
    assert layout.count_files_by_class(str(root), "*/*") == {"a": 3, "b": 2}
    (root / "b" / "slide-2").mkdir()  # no slide-2.mrxs beside it: a nested folder
    with pytest.raises(ingest.LayoutError, match=r"holds folders \(slide-2\)"):
        layout.validate_layout(str(root))


def test_input_pattern_reaches_class_folders_below_span_folders(tmp_path):
    make_classes(tmp_path / "span-1", classes=("a", "b"))
    make_classes(tmp_path / "span-2", classes=("a", "b", "c"))
    assert layout.validate_layout(str(tmp_path), "span-2/*/*").classes == ["a", "b", "c"]
    assert layout.count_files_by_class(str(tmp_path), "span-1/*/*") == {"a": 2, "b": 2}
    with pytest.raises(ingest.LayoutError, match="holds folders"):
        layout.validate_layout(str(tmp_path))  # span folders are not classes


# ---------------------------------------------------------------- the messy folder, through Beam


def messy_folder(root: Path):
    """Good files of every kind plus each bad case; returns (good paths, expected quarantine)."""
    good = {
        "daisy/photo.jpg": encode(two_tone(), "JPEG"),
        "daisy/scan.tif": encode(two_tone(), "TIFF"),
        "daisy/anim.gif": _gif_two_frames(),
        "daisy/big.png": encode(two_tone((200, 100)), "PNG"),          # downscaled to 64 px
        "tulip/icon.bmp": encode(two_tone(), "BMP"),
        "tulip/alpha.png": encode(_rgba(), "PNG"),
        "tulip/modern.webp": encode(two_tone(), "WEBP"),
        "tulip/deep.png": encode(Image.fromarray(
            np.full((8, 8), 40000, np.uint16), mode="I;16"), "PNG"),
    }
    bad = {
        "daisy/empty.jpg": (b"", ingest.EMPTY),
        "daisy/truncated.jpg": (encode(two_tone((64, 64)), "JPEG")[:300], ingest.UNREADABLE),
        "tulip/readme.txt": (b"not a picture", ingest.NOT_AN_IMAGE),
        "tulip/bomb.png": (png_header_only(50_000, 50_000), ingest.TOO_LARGE),
    }
    for rel, data in list(good.items()) + [(r, d) for r, (d, _) in bad.items()]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    os.mkfifo(root / "tulip" / "pipe.png")
    (root / "tulip" / ".DS_Store").write_bytes(b"\x00\x01")
    expected = {rel: category for rel, (_, category) in bad.items()}
    expected.update({"tulip/pipe.png": ingest.UNREADABLE, "tulip/.DS_Store": ingest.HIDDEN})
    return sorted(good), expected


MESSY_OPTIONS = ingest.IngestOptions(max_side=64, hidden_files="skip")


def test_beam_conversion_splits_examples_from_quarantine(tmp_path):
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from inception_retrain.components.image_example_gen import executor

    good, expected = messy_folder(tmp_path)
    found = layout.validate_layout(str(tmp_path), options=MESSY_OPTIONS)
    listed = [str(p) for p in sorted(tmp_path.glob("*/*"))]
    with beam.Pipeline() as pipeline:
        examples, quarantine, _ = executor.convert_paths(
            pipeline | beam.Create(listed), str(tmp_path), MESSY_OPTIONS)
        paths = examples | "Path" >> beam.Map(lambda e: feature(e, features.PATH_KEY))
        assert_that(paths, equal_to(good), label="good")
        reasons = quarantine | beam.Map(lambda record: (record.relative_path, record.category))
        from_layout = [(q.relative_path, q.category) for q in found.quarantined]
        assert_that(reasons, equal_to(sorted(set(expected.items()) - set(from_layout))),
                    label="quarantine")
