"""preprocessing_fn for TFX Transform; the same graph runs inside the served model.

Transform runs with materialize=False: it computes the label vocabulary and writes the transform
graph only. Materialised 299x299x3 float32 pixels would be ~1 MB an example (about 18x the JPEG);
the Trainer instead applies the graph to the raw examples while reading them.
"""
import tensorflow as tf
import tensorflow_transform as tft

from inception_retrain.components import features
from inception_retrain.components.trainer.config import STAIN_NORMALIZATIONS
from inception_retrain.components.transform import stain

DEFAULT_IMAGE_SIZE = 299


def decode_and_resize(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """Encoded bytes [batch] -> float32 [batch, size, size, 3] in [-1, 1]."""
    return decode_pixels(encoded, image_size) / 127.5 - 1.0


def decode_pixels(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """Encoded bytes [batch] -> float32 [batch, size, size, 3] in [0, 255].

    Images in a batch differ in size, so each is decoded and resized inside map_fn.
    """
    def one(data):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return resize(tf.cast(image, tf.float32), image_size)

    resized = tf.map_fn(one, encoded, fn_output_signature=tf.TensorSpec(
        [image_size, image_size, 3], tf.float32))
    return tf.ensure_shape(resized, [None, image_size, image_size, 3])


def reinhard_fitted(pixels: tf.Tensor) -> tf.Tensor:
    """Reinhard normalisation to the LAB tissue mean and std of the whole analysed split (the
    training split: tft analyzers run once over it and the result is a constant of the graph)."""
    count, total, squares = stain.tissue_moments(pixels)
    target_mean, target_std = stain.target_from_sums(
        tft.sum(count), tft.sum(total, reduce_instance_dims=False),
        tft.sum(squares, reduce_instance_dims=False))
    return stain.reinhard(pixels, target_mean, target_std)


def resize(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """[h, w, 3] -> [size, size, 3]: each axis at least twice the size is first averaged in
    blocks of its whole multiple of size (a box filter: no pixel of a large image is skipped),
    then bilinear interpolation (half-pixel centres) covers the rest, under 2x either way.

    With it the input pipeline needs half the CPU it needed with an antialiased resize (it shares
    the CPU with the network in the trainer's cache build); enlarging, as small tiles are, gives
    the same result."""
    shape = tf.shape(image)
    blocks = tf.maximum(shape[:2] // image_size, 1)
    height, width = shape[0] // blocks[0], shape[1] // blocks[1]
    image = tf.reshape(image[:height * blocks[0], :width * blocks[1]],
                       [height, blocks[0], width, blocks[1], 3])
    return tf.image.resize(tf.reduce_mean(image, axis=[1, 3]), [image_size, image_size])


def preprocessing_fn(inputs, custom_config=None):
    """Raw features (see components.features) -> model inputs."""
    custom_config = custom_config or {}
    image_size = int(custom_config.get("image_size", DEFAULT_IMAGE_SIZE))
    normalization = custom_config.get("stain_normalization", "none")
    if normalization not in STAIN_NORMALIZATIONS:
        raise ValueError(f"stain_normalization must be one of {', '.join(STAIN_NORMALIZATIONS)}, "
                         f"got {normalization!r}")
    pixels = decode_pixels(tf.reshape(inputs[features.IMAGE_KEY], [-1]), image_size)
    if normalization == "reinhard":
        pixels = reinhard_fitted(pixels)
    outputs = {features.TRANSFORMED_IMAGE_KEY: pixels / 127.5 - 1.0}
    labels = tf.reshape(inputs[features.LABEL_KEY], [-1])
    # Class ids in the order of the names' fingerprints, not of their frequency: the default
    # order (most frequent first) changes with the train split's class balance, and then the
    # served model's scores mean other classes, so the gate could not compare with it.
    outputs[features.TRANSFORMED_LABEL_KEY] = tft.compute_and_apply_vocabulary(
        labels, vocab_filename=features.LABEL_VOCABULARY, fingerprint_shuffle=True)
    return outputs
