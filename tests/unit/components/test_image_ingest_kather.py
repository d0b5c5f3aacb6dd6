"""Real histology TIFF tiles (which TensorFlow cannot decode) arrive as lossless PNGs that the
serving graph decodes to exactly the tile's pixels."""
import numpy as np
from PIL import Image

from conftest import KATHER, copy_smallest_images, read_examples, require_dataset
from test_image_ingest import decoded, feature


def test_tiff_tiles_ingest_losslessly(tmp_path):
    from inception_retrain.components import features
    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.standalone import run_example_gen

    source = require_dataset(KATHER)
    data = copy_smallest_images(source, tmp_path / "data", ("01_tumor", "07_adipose"), 5)
    artifact = run_example_gen(ImageExampleGen(str(data)), str(tmp_path / "out"))
    examples = [e for split in read_examples(artifact.uri).values() for e in split]
    assert len(examples) == 10
    for example in examples:
        relative_path = feature(example, features.PATH_KEY)
        assert feature(example, features.FORMAT_KEY) == "tiff"
        with Image.open(data / relative_path) as tile:
            expected = np.asarray(tile.convert("RGB"))
        np.testing.assert_array_equal(decoded(example), expected)
