"""preprocessing_fn on real tf.Transform with Beam: shape, dtype, range and the vocabulary."""
import io
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from PIL import Image
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from inception_retrain.components import features
from inception_retrain.components.transform import preprocessing


def _encoded(size, color, fmt):
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def _encoded_array(pixels):
    """PNG bytes of a [h, w, 3] array of 0..255 values (lossless)."""
    out = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(out, format="PNG")
    return out.getvalue()


RAW_SPEC = {features.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
            features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.string)}


def _analyze_and_transform(rows, image_size, with_graph=None, **config):
    """(transformed rows, vocabulary); with_graph(TFTransformOutput) is called on the written
    transform graph (what the Trainer and the served model apply) and its result returned too."""
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    with tempfile.TemporaryDirectory() as temp, tft_beam.Context(temp_dir=temp):
        (transformed, _), transform_fn = (
            (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
                lambda inputs: preprocessing.preprocessing_fn(
                    inputs, {"image_size": image_size, **config}),
                output_record_batches=False))
        output_dir = tempfile.mkdtemp(dir=temp)
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
        graph = tft.TFTransformOutput(output_dir)
        vocabulary = [v.decode() for v in graph.vocabulary_by_name(features.LABEL_VOCABULARY)]
        if with_graph:
            return transformed, vocabulary, with_graph(graph)
    return transformed, vocabulary


def test_images_of_any_size_become_float_squares_and_labels_ids():
    rows = [
        {features.IMAGE_KEY: [_encoded((64, 40), (255, 0, 0), "JPEG")],
         features.LABEL_KEY: [b"tumor"]},
        {features.IMAGE_KEY: [_encoded((30, 90), (0, 0, 255), "PNG")],
         features.LABEL_KEY: [b"stroma"]},
        {features.IMAGE_KEY: [_encoded((100, 100), (255, 255, 255), "PNG")],
         features.LABEL_KEY: [b"tumor"]},
    ]
    transformed, vocabulary = _analyze_and_transform(rows, image_size=75)
    assert sorted(vocabulary) == ["stroma", "tumor"]
    assert len(transformed) == 3
    for row, out in zip(rows, transformed):
        image = np.asarray(out[features.TRANSFORMED_IMAGE_KEY])
        assert image.shape == (75, 75, 3)
        assert image.dtype == np.float32
        assert image.min() >= -1.0 - 1e-6 and image.max() <= 1.0 + 1e-6
        label = row[features.LABEL_KEY][0].decode()
        assert out[features.TRANSFORMED_LABEL_KEY] == vocabulary.index(label)
    red = np.asarray(transformed[0][features.TRANSFORMED_IMAGE_KEY])
    assert red[..., 0].mean() > 0.9 and red[..., 2].mean() < -0.9  # channels kept in RGB order
    white = np.asarray(transformed[2][features.TRANSFORMED_IMAGE_KEY])
    np.testing.assert_allclose(white, 1.0, atol=1e-5)


def test_class_ids_do_not_follow_the_class_balance():
    """The same classes in another balance keep their ids: a model trained on last week's split
    and one trained on this week's score the same classes in the same columns, so the gate can
    compare the candidate with the served model (TFT's default order is most frequent first)."""
    def rows(counts):
        return [{features.IMAGE_KEY: [_encoded((20 + i, 20), (i * 40, 0, 0), "PNG")],
                 features.LABEL_KEY: [label.encode()]}
                for label, n in counts.items() for i in range(n)]

    _, one_way = _analyze_and_transform(rows({"tumor": 3, "stroma": 1, "mucosa": 2}), 16)
    _, other_way = _analyze_and_transform(rows({"tumor": 1, "stroma": 3, "mucosa": 2}), 16)
    assert one_way == other_way and sorted(one_way) == ["mucosa", "stroma", "tumor"]


def test_decode_and_resize_matches_the_configured_size():
    batch = tf.constant([_encoded((10, 20), (0, 0, 0), "JPEG"),
                         _encoded((300, 200), (128, 128, 128), "PNG")])
    out = preprocessing.decode_and_resize(batch, 299)
    assert out.shape == (2, 299, 299, 3)
    np.testing.assert_allclose(out[0].numpy(), -1.0, atol=0.02)
    np.testing.assert_allclose(out[1].numpy(), 128 / 127.5 - 1.0, atol=1e-5)


def test_resize_averages_every_pixel_of_a_large_image():
    """Stripes one pixel wide every third column, shrunk 3x: each output pixel is their mean (a
    box filter). Sampling alone (bilinear, no filter) would miss every stripe and give black."""
    stripes = np.zeros([3 * 20, 3 * 20, 3], np.float32)
    stripes[:, ::3] = 255.0
    out = preprocessing.resize(tf.constant(stripes), 20).numpy()
    np.testing.assert_allclose(out, 85.0, atol=1e-3)
    assert tf.reduce_max(tf.image.resize(stripes, [20, 20])).numpy() == 0.0  # the trap avoided


@pytest.mark.parametrize("shape", [(15, 15), (12, 30), (25, 19)])
def test_resize_under_twice_the_size_is_bilinear_interpolation(shape):
    """Tiles smaller than the model's input (enlarged) and images under twice its size come out
    as plain bilinear interpolation would make them."""
    image = tf.random.stateless_uniform(shape + (3,), seed=(1, 2), maxval=255.0)
    np.testing.assert_allclose(preprocessing.resize(image, 20).numpy(),
                               tf.image.resize(image, [20, 20]).numpy(), atol=1e-4)


def test_undecodable_bytes_fail_with_a_decode_error():
    with pytest.raises(tf.errors.InvalidArgumentError):
        preprocessing.decode_and_resize(tf.constant([b"not an image"]), 75)
