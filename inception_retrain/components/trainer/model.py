"""InceptionV3 transfer-learning model: base, head, and which layers train in each phase."""
import logging
import os
from typing import Optional, Tuple

import numpy as np
import tf_keras
from tensorflow.python.autograph.core import config as autograph_config

from inception_retrain.components.transform import stain


def exclude_tf_keras_from_autograph() -> None:
    """Stops autograph from transpiling tf_keras' own code on every trace.

    TensorFlow's do-not-convert list names "keras" but not "tf_keras", so each fit() start,
    model build and SavedModel export converts hundreds of Keras internals: measured here,
    a small head's first fit() took 22.8 s instead of 1.2 s. Keras code needs no conversion.
    """
    rule = autograph_config.DoNotConvert("tf_keras")
    if not any(getattr(r, "_prefix", None) == "tf_keras"
               for r in autograph_config.CONVERSION_RULES):
        autograph_config.CONVERSION_RULES = (rule,) + tuple(autograph_config.CONVERSION_RULES)


exclude_tf_keras_from_autograph()

INCEPTION_BLOCKS = 11  # mixed0 ... mixed10; "top N blocks" counts back from mixed10
IMAGENET_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


def resolve_weights(spec: str) -> Tuple[Optional[str], str]:
    """Maps the configured base weights to a Keras `weights=` value and a plain description.

    spec is "imagenet" (Keras' cache, else a download), "none" (random initialisation) or the
    path of a local weights file (air-gapped clusters). When "imagenet" is neither cached nor
    downloadable, falls back to random initialisation and says so in the description.
    """
    if spec == "none":
        return None, "random initialisation (base_weights=none)"
    if spec != "imagenet":
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"base_weights file {spec!r} does not exist")
        return spec, f"weights file {spec}"
    cached = os.path.join(os.path.expanduser("~"), ".keras", "models", IMAGENET_WEIGHTS_FILE)
    if os.path.isfile(cached):
        return cached, f"ImageNet (Keras cache {cached})"
    try:
        path = tf_keras.utils.get_file(
            IMAGENET_WEIGHTS_FILE,
            "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
            + IMAGENET_WEIGHTS_FILE, cache_subdir="models")
    except Exception as err:  # get_file wraps every network failure in a plain Exception
        logging.warning("ImageNet weights unavailable (%s); using random initialisation", err)
        return None, ("RANDOM INITIALISATION: ImageNet weights could not be downloaded "
                      f"({str(err).splitlines()[0]}); accuracy will be far below a real "
                      "transfer-learning run")
    return path, "ImageNet (downloaded)"


def build_base(image_size: int, weights: Optional[str]) -> tf_keras.Model:
    """InceptionV3 without its top, global-average-pooled to 2048 features."""
    return tf_keras.applications.InceptionV3(
        include_top=False, weights=weights, input_shape=(image_size, image_size, 3),
        pooling="avg")


def build_head(num_classes: int, train_features, dropout: float) -> tf_keras.Model:
    """The new classifier on the pooled features; outputs logits.

    Its first layer standardises each feature with statistics of the training features: ImageNet
    features range widely, and a randomly initialised base gives values near 1e-4.
    """
    values = np.asarray(train_features, np.float64).reshape(len(train_features), -1)
    return build_head_from_stats(num_classes, values.mean(axis=0), values.var(axis=0),
                                 len(values), dropout)


def build_head_from_stats(num_classes: int, mean, variance, count: int,
                          dropout: float) -> tf_keras.Model:
    """build_head from per-feature mean and variance (streamed over the cache on disk, or
    merged across workers), with the same weights as Keras' adapt() leaves.

    Every layer computes in float32 whatever the global policy: the standardisation subtracts
    close numbers (features near 1e-4 from a random base), which bfloat16's 8-bit mantissa
    would wipe out, and the head costs nothing next to the base."""
    dim = len(mean)
    normalize = tf_keras.layers.Normalization(axis=-1, name="feature_standardization",
                                              dtype="float32")
    normalize.build((None, dim))
    normalize.adapt_mean.assign(np.asarray(mean, np.float32))
    normalize.adapt_variance.assign(np.asarray(variance, np.float32))
    normalize.count.assign(int(count))
    normalize.finalize_state()
    return tf_keras.Sequential([
        tf_keras.layers.InputLayer(input_shape=(dim,)),
        normalize,
        tf_keras.layers.Dropout(dropout, dtype="float32"),
        tf_keras.layers.Dense(num_classes, name="logits", dtype="float32"),
    ], name="head")


def float32_copy(classifier: tf_keras.Model, image_size: int) -> tf_keras.Model:
    """The classifier rebuilt with every layer in float32 and the same weights: what is exported,
    so the served model runs on any CPU or GPU (bfloat16 is slow without avx512_bf16 or AMX)
    and does not depend on the training machine. Built outside any distribution strategy, so
    its variables are plain ones a single process can save."""
    head = classifier.get_layer("head")
    dim = head.input_shape[-1]
    num_classes = head.output_shape[-1]
    policy = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy("float32")
    try:
        copy_head = build_head_from_stats(num_classes, np.zeros(dim), np.ones(dim), 1, 0.0)
        copy = build_classifier(build_base(image_size, None), copy_head)
    finally:
        tf_keras.mixed_precision.set_global_policy(policy)
    copy.set_weights(classifier.get_weights())
    copy_head.get_layer("feature_standardization").finalize_state()  # mean/variance constants
    return copy


def build_classifier(base: tf_keras.Model, head: tf_keras.Model,
                     augment: Optional[tf_keras.Model] = None) -> tf_keras.Model:
    """Image in, logits out. The base always runs with training=False, so its BatchNorm layers
    use their moving statistics in both phases, whatever fit() passes. Augmentation layers,
    when given, act in training only."""
    images = tf_keras.Input(shape=base.input_shape[1:], name="image")
    x = augment(images) if augment is not None else images
    return tf_keras.Model(images, head(base(x, training=False)), name="inception_v3_classifier")


def augmentation(config) -> Optional[tf_keras.Model]:
    """Random flip, rotation, zoom (crop), contrast and brightness from TrainConfig's augment_*
    settings; None when all are off. Inputs are in [-1, 1]."""
    layers = []
    if config.augment_flip:
        layers.append(tf_keras.layers.RandomFlip("horizontal_and_vertical"))
    if config.augment_rotation:
        layers.append(tf_keras.layers.RandomRotation(config.augment_rotation))
    if config.augment_zoom:
        layers.append(tf_keras.layers.RandomZoom((-config.augment_zoom, 0.0)))
    if config.augment_contrast:
        layers.append(tf_keras.layers.RandomContrast(config.augment_contrast))
    if config.augment_brightness:
        layers.append(tf_keras.layers.RandomBrightness(config.augment_brightness,
                                                       value_range=(-1.0, 1.0)))
    if config.stain_jitter:
        layers.append(HedJitter(config.stain_jitter, seed=config.seed))
    return tf_keras.Sequential(layers, name="augmentation") if layers else None


class HedJitter(tf_keras.__internal__.layers.BaseRandomLayer):
    """HED colour jitter (transform/stain.py) on [-1, 1] images, in training only; in float32
    whatever the precision, since optical densities are logarithms."""

    def __init__(self, strength: float, seed: Optional[int] = None, **kwargs):
        super().__init__(seed=seed, **{**kwargs, "dtype": "float32"})
        self.strength = strength
        self.seed = seed

    def call(self, inputs, training=None):
        if not training:
            return inputs
        shape = stain.jitter_shape(inputs)
        alpha = self._random_generator.random_uniform(shape, 1.0 - self.strength,
                                                      1.0 + self.strength)
        beta = self._random_generator.random_uniform(shape, -self.strength, self.strength)
        return stain.hed_scale_shift((inputs + 1.0) * 127.5, alpha, beta) / 127.5 - 1.0

    def get_config(self):
        return {**super().get_config(), "strength": self.strength, "seed": self.seed}


def unfreeze_boundary(base: tf_keras.Model, unfreeze_blocks: int) -> int:
    """Index of the first layer of the top `unfreeze_blocks` inception blocks."""
    if not 0 <= unfreeze_blocks <= INCEPTION_BLOCKS:
        raise ValueError(f"unfreeze_blocks must be 0..{INCEPTION_BLOCKS}, got {unfreeze_blocks}")
    if unfreeze_blocks == 0:
        return len(base.layers)
    if unfreeze_blocks == INCEPTION_BLOCKS:
        return 0
    names = [layer.name for layer in base.layers]
    return names.index(boundary_layer_name(unfreeze_blocks)) + 1


def boundary_layer_name(unfreeze_blocks: int) -> str:
    """The last frozen block's output layer, e.g. "mixed8" for the top two blocks."""
    if not 1 <= unfreeze_blocks < INCEPTION_BLOCKS:
        raise ValueError(f"no block boundary for unfreeze_blocks={unfreeze_blocks}")
    return f"mixed{INCEPTION_BLOCKS - 1 - unfreeze_blocks}"


def split_at_boundary(base: tf_keras.Model, unfreeze_blocks: int):
    """(bottom, top): the frozen blocks, image -> activations, and the blocks that train,
    activations -> pooled features. They share the base's layers, so training `top` trains
    the base. None when all 11 blocks train (there is nothing frozen to cache)."""
    if unfreeze_blocks >= INCEPTION_BLOCKS:
        return None
    boundary = base.get_layer(boundary_layer_name(unfreeze_blocks)).output
    return (tf_keras.Model(base.input, boundary, name="frozen_bottom"),
            tf_keras.Model(boundary, base.output, name="trainable_top"))


def freeze_for_phase(base: tf_keras.Model, phase: int, unfreeze_blocks: int) -> None:
    """Phase 1: the whole base frozen. Phase 2: the top blocks train, BatchNorm stays frozen."""
    if phase == 1:
        base.trainable = False
        return
    boundary = unfreeze_boundary(base, unfreeze_blocks)
    base.trainable = True
    for index, layer in enumerate(base.layers):
        is_batch_norm = isinstance(layer, tf_keras.layers.BatchNormalization)
        layer.trainable = index >= boundary and not is_batch_norm
