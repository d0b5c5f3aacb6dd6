"""`predict --model DIR SLIDE --heatmap OUT.png --tiles OUT.csv` on a synthetic slide with two
tissue regions of different stain, classified by a small real SavedModel with the served
signature (serving_default: encoded images -> classes, scores) that calls a tile by its colour."""
import csv
import numpy as np
import pytest

from inception_retrain.cli import main as cli
from inception_retrain.cli.slide_predict import PALETTE
from slide_writer import GLASS, slide_pixels, write_slide

RED, BLUE = (200, 60, 60), (60, 60, 200)


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory):
    """A SavedModel whose serving_default calls a tile "red" or "blue" by its mean colour."""
    import tensorflow as tf

    class ColourModel(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
        def serve(self, images):
            def mean(data):
                pixels = tf.cast(tf.io.decode_png(data, channels=3), tf.float32)
                return tf.reduce_mean(pixels, axis=[0, 1])
            means = tf.map_fn(mean, images, fn_output_signature=tf.float32)
            logits = tf.stack([means[:, 0] - means[:, 2], means[:, 2] - means[:, 0]], 1) / 50
            n = tf.shape(images)[0]
            return {"classes": tf.tile(tf.constant([["red", "blue"]]), [n, 1]),
                    "scores": tf.nn.softmax(logits)}

    model = ColourModel()
    out = str(tmp_path_factory.mktemp("model") / "1")
    tf.saved_model.save(model, out, signatures={"serving_default": model.serve})
    return out


def test_heatmap_tiles_csv_and_slide_call(colour_model, tmp_path, capsys):
    pixels = slide_pixels((1024, 1536), [(0, 0, 768, 512)], RED)
    pixels[512:1024, 1024:1536] = BLUE
    slide = write_slide(tmp_path / "s.tiff", pixels, levels=3)
    heat, tiles = tmp_path / "heat.png", tmp_path / "tiles.csv"
    assert cli.main(["predict", "--model", colour_model, str(slide), "--heatmap", str(heat),
                     "--tiles", str(tiles)]) == 0
    path, call, count, shares = capsys.readouterr().out.strip().split("\t")
    assert (path, call, count) == (str(slide), "red", "10")
    assert shares == "red 0.600, blue 0.400"
    with open(tiles) as f:
        rows = list(csv.DictReader(f))
    by_corner = {(int(r["x"]), int(r["y"])): r["class"] for r in rows}
    assert by_corner[(0, 0)] == "red" and by_corner[(1024, 512)] == "blue"
    assert sorted(by_corner.values()).count("blue") == 4
    from PIL import Image

    image = np.asarray(Image.open(heat).convert("RGB")).astype(int)
    assert image.shape[1] == 1024 and image.shape[0] > 1024 * 1024 // 1536
    colour = dict(zip(["blue", "red"], PALETTE))   # classes in name order
    # a confident tile: its class colour at 3/4 opacity over the tissue
    for (row, col), name, tissue in (((40, 40), "red", RED), ((600, 900), "blue", BLUE)):
        expected = 0.75 * np.array(colour[name]) + 0.25 * np.array(tissue)
        assert np.abs(image[row, col] - expected).max() <= 12, name
    assert np.abs(image[600, 100] - np.array(GLASS)).max() <= 4    # glass left as it is


def test_slide_without_scale_is_skipped_by_name_unless_the_config_gives_one(
        colour_model, tmp_path, capsys):
    slide = write_slide(tmp_path / "noscale.tiff", slide_pixels((512, 512), [(0, 0, 256, 256)]),
                        mpp=None, levels=2)
    assert cli.main(["predict", "--model", colour_model, str(slide), "--heatmap",
                     str(tmp_path / "h.png")]) == 1
    assert "noscale.tiff: skipped" in capsys.readouterr().err
    assert cli.main(["predict", "--model", colour_model, str(slide), "--heatmap",
                     str(tmp_path / "h.png"), "--set", "data.slide_default_mpp=0.5",
                     "--set", "data.slide_tile_um=64"]) == 0
    assert capsys.readouterr().out.split("\t")[:3] == [str(slide), "red", "4"]
