"""Stain normalisation in the real Transform graph (tf.Transform on Beam): fitted once on the
analysed (training) rows, applied to every image, carried by the written graph; off by default."""
import numpy as np
import pytest
import tensorflow as tf

from inception_retrain.components import features
from inception_retrain.components.transform import preprocessing, stain
from test_stain import _he_like, sampled_tissue
from test_transform import _analyze_and_transform, _encoded_array

SIDE = 32


def _rows(images):
    return [{features.IMAGE_KEY: [_encoded_array(image)], features.LABEL_KEY: [label]}
            for image, label in zip(images, [b"tumor", b"stroma"] * len(images))]


def _pixels(row):
    return (np.asarray(row[features.TRANSFORMED_IMAGE_KEY]) + 1.0) * 127.5


def _through_graph(image):
    def apply(graph):
        raw = {features.IMAGE_KEY: tf.constant([[_encoded_array(image)]]),
               features.LABEL_KEY: tf.constant([[b"tumor"]])}
        out = graph.transform_raw_features(raw, drop_unused_features=True)
        return (out[features.TRANSFORMED_IMAGE_KEY].numpy()[0] + 1.0) * 127.5
    return apply


def test_reinhard_is_fitted_on_the_analysed_rows_and_in_the_written_graph():
    images = np.round(_he_like(batch=6, side=SIDE, seed=7))
    unseen = _he_like(batch=1, side=SIDE, seed=99)[0]
    unseen[: SIDE // 2] *= [0.85, 1.0, 1.1]  # its tissue stained by another lab
    unseen = np.round(np.clip(unseen, 0, 255))
    transformed, _, served = _analyze_and_transform(
        _rows(images), SIDE, with_graph=_through_graph(unseen), stain_normalization="reinhard")
    pooled = np.concatenate([sampled_tissue(image) for image in images])
    target_mean, target_std = pooled.mean(0), pooled.std(0)
    for image, row in zip(images, transformed):
        out = sampled_tissue(_pixels(row))
        assert np.abs(sampled_tissue(image).mean(0) - target_mean).max() > 0.05  # it was off
        np.testing.assert_allclose(out.mean(0), target_mean, atol=0.01)
        np.testing.assert_allclose(out.std(0), target_std, rtol=0.05)
    # an image the analysis never saw, through the graph the Trainer and the served model apply
    assert np.abs(sampled_tissue(unseen).mean(0) - target_mean).max() > 0.05
    np.testing.assert_allclose(sampled_tissue(served).mean(0), target_mean, atol=0.01)


def test_off_by_default_the_images_are_only_decoded_and_scaled():
    images = np.round(_he_like(batch=2, side=SIDE, seed=8))
    for config in ({}, {"stain_normalization": "none"}):
        transformed, _ = _analyze_and_transform(_rows(images), SIDE, **config)
        for image, row in zip(images, transformed):
            np.testing.assert_allclose(
                np.asarray(row[features.TRANSFORMED_IMAGE_KEY]),
                preprocessing.decode_and_resize(tf.constant([_encoded_array(image)]),
                                                SIDE).numpy()[0], atol=1e-6)
            np.testing.assert_allclose(_pixels(row), image, atol=1e-3)


def test_an_unknown_normalisation_is_refused_by_name():
    with pytest.raises(ValueError, match="stain_normalization must be one of none, reinhard"):
        preprocessing.preprocessing_fn(
            {features.IMAGE_KEY: tf.constant([[b""]]), features.LABEL_KEY: tf.constant([[b"a"]])},
            {"stain_normalization": "macenko"})
