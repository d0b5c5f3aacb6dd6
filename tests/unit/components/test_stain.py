"""transform/stain.py against numpy implementations of the published formulas (scikit-image is
not in the lock): sRGB -> CIE LAB (D65), Ruifrok-Johnston colour deconvolution, Reinhard."""
import numpy as np
import pytest
import tensorflow as tf

from inception_retrain.components.trainer import model as model_lib
from inception_retrain.components.trainer.config import TrainConfig
from inception_retrain.components.transform import stain

# Published: skimage.color's rgb_from_hed; sRGB primaries (D65) and the D65 white.
M_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
M_XYZ = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                  [0.019334, 0.119193, 0.950227]])
WHITE = np.array([0.95047, 1.0, 1.08883])


def numpy_lab(rgb255):
    c = rgb255 / 255.0
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = linear @ M_XYZ.T / WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def numpy_hed(rgb255):
    return -np.log((rgb255 + 1.0) / 256.0) @ np.linalg.inv(M_HED)


def _he_like(batch=4, side=32, seed=0):
    """Pinkish-purple tissue on a white background, different in each image."""
    rng = np.random.default_rng(seed)
    images = np.full([batch, side, side, 3], 245.0)
    for i in range(batch):
        tint = np.array([170, 90, 160]) + rng.uniform(-30, 30, 3)
        images[i, : side // 2] = np.clip(tint + rng.normal(0, 15, [side // 2, side, 3]), 0, 255)
    return images.astype(np.float32)


def test_lab_matches_the_cie_formulas_and_published_values():
    pixels = np.random.default_rng(1).uniform(0, 255, [500, 3])
    # skimage's (and stain.py's) rounded CIE constants, 7.787 and 0.008856, differ from the
    # exact ratios by under 1e-3 in L*a*b*
    np.testing.assert_allclose(stain.rgb_to_lab(tf.constant(pixels)).numpy(),
                               numpy_lab(pixels), atol=1e-3)
    # sRGB red and white in CIE LAB (D65), as colour references list them
    lab = stain.rgb_to_lab(tf.constant([[255.0, 0, 0], [255.0, 255, 255]])).numpy()
    np.testing.assert_allclose(lab, [[53.24, 80.09, 67.20], [100.0, 0.0, 0.0]], atol=0.02)


def test_lab_round_trip_gives_the_image_back():
    pixels = tf.random.stateless_uniform([1000, 3], (3, 4), maxval=255.0)
    np.testing.assert_allclose(stain.lab_to_rgb(stain.rgb_to_lab(pixels)).numpy(),
                               pixels.numpy(), atol=0.01)


def test_hed_is_colour_deconvolution_and_inverts():
    pixels = np.random.default_rng(2).uniform(0, 255, [500, 3]).astype(np.float32)
    hed = stain.rgb_to_hed(tf.constant(pixels))
    np.testing.assert_allclose(hed.numpy(), numpy_hed(pixels), atol=1e-5)
    np.testing.assert_allclose(stain.hed_to_rgb(hed).numpy(), pixels, atol=0.01)
    # pure haematoxylin density comes out as haematoxylin only
    h_only = 256.0 * np.exp(-0.8 * M_HED[0]) - 1.0
    np.testing.assert_allclose(stain.rgb_to_hed(tf.constant([h_only])).numpy(),
                               [[0.8, 0.0, 0.0]], atol=1e-5)


def test_jitter_zero_is_the_identity():
    images = tf.constant(_he_like())
    assert stain.hed_jitter(images, 0.0, (1, 2)) is images
    np.testing.assert_allclose(
        stain.hed_scale_shift(images, tf.ones([4, 1, 1, 3]), tf.zeros([4, 1, 1, 3])).numpy(),
        images.numpy(), atol=0.01)


def test_jitter_changes_colours_within_its_bounds():
    strength = 0.05
    images = tf.constant(_he_like())
    jittered = stain.hed_jitter(images, strength, (5, 6))
    assert jittered.shape == images.shape
    assert np.abs(jittered.numpy() - images.numpy()).max() > 1.0
    assert jittered.numpy().min() >= 0.0 and jittered.numpy().max() <= 255.0
    before, after = numpy_hed(images.numpy()), numpy_hed(jittered.numpy())
    unclipped = np.all((jittered.numpy() > 0) & (jittered.numpy() < 255), axis=-1)
    # after = before * alpha + beta, |alpha - 1| <= s, |beta| <= s
    bound = strength * np.abs(before) + strength + 1e-4
    assert np.all(np.abs(after - before)[unclipped] <= bound[unclipped])
    # one alpha and beta per image and stain: the change is affine in each image's densities
    for i in range(4):
        for k in range(3):
            x, y = before[i][unclipped[i]][:, k], after[i][unclipped[i]][:, k]
            slope, intercept = np.polyfit(x, y, 1)
            np.testing.assert_allclose(y, slope * x + intercept, atol=1e-3)
            assert abs(slope - 1) <= strength + 1e-4 and abs(intercept) <= strength + 1e-4


def _tissue_stats(images):
    lab = numpy_lab(images.astype(np.float64))
    tissue = lab[..., 0] < stain.TISSUE_MAX_LIGHTNESS
    return [(lab[i][tissue[i]].mean(0), lab[i][tissue[i]].std(0)) for i in range(len(images))]


def test_reinhard_with_the_images_own_stats_is_the_identity():
    image = _he_like(batch=1)
    mean, std = _tissue_stats(image)[0]
    out = stain.reinhard(tf.constant(image), tf.constant(mean, tf.float32),
                         tf.constant(std, tf.float32))
    np.testing.assert_allclose(out.numpy(), image, atol=0.05)


def test_reinhard_maps_every_image_to_the_target_stats():
    images = _he_like(batch=4, seed=3)
    target_mean, target_std = np.array([55.0, 25.0, -12.0]), np.array([8.0, 5.0, 4.0])
    out = stain.reinhard(tf.constant(images), tf.constant(target_mean, tf.float32),
                         tf.constant(target_std, tf.float32)).numpy()
    assert np.abs(out - images).max() > 10  # they did differ
    for (mean, std), (before, _) in zip(_tissue_stats(out), _tissue_stats(images)):
        assert np.abs(before - target_mean).max() > 3
        np.testing.assert_allclose(mean, target_mean, atol=0.5)
        np.testing.assert_allclose(std, target_std, atol=0.5)


def test_reinhard_leaves_an_image_without_tissue_alone():
    glass = np.full([1, 8, 8, 3], 250.0, np.float32)
    out = stain.reinhard(tf.constant(glass), tf.constant([50.0, 20, -10]),
                         tf.constant([5.0, 5, 5]))
    np.testing.assert_array_equal(out.numpy(), glass)


def test_target_from_sums_is_the_pooled_mean_and_std():
    images = _he_like(batch=3, seed=4)
    count, total, squares = stain.tissue_moments(tf.constant(images, tf.float64))
    lab = stain.rgb_to_lab(tf.constant(images, tf.float64))
    mean, std = stain.target_from_sums(tf.reduce_sum(count), tf.reduce_sum(total, 0),
                                       tf.reduce_sum(squares, 0))
    lab = lab.numpy()
    pooled = lab[lab[..., 0] < stain.TISSUE_MAX_LIGHTNESS]
    np.testing.assert_allclose(mean.numpy(), pooled.mean(0), atol=1e-6)
    np.testing.assert_allclose(std.numpy(), pooled.std(0), atol=1e-6)


@pytest.mark.parametrize("training", [False, True])
def test_jitter_layer_acts_in_training_only(training):
    layers = model_lib.augmentation(TrainConfig(stain_jitter=0.1, feature_cache=False))
    images = tf.constant(_he_like()) / 127.5 - 1.0
    out = layers(images, training=training).numpy()
    if training:
        assert np.abs(out - images.numpy()).max() > 0.01
        assert out.min() >= -1.0 and out.max() <= 1.0
    else:
        np.testing.assert_array_equal(out, images.numpy())


def numpy_rgb(lab):
    """CIE L*a*b* (D65) -> RGB in [0, 255] in float64, skimage.color.lab2rgb's formulas (Z's f
    clamped at 0, the result clipped to the gamut)."""
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, np.maximum(fy - lab[..., 2] / 200, 0)], axis=-1)
    xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * WHITE
    linear = xyz @ np.linalg.inv(M_XYZ).T
    srgb = np.where(linear > 0.0031308, 1.055 * np.abs(linear) ** (1 / 2.4) - 0.055,
                    12.92 * linear)
    return np.clip(srgb, 0, 1) * 255


def numpy_reinhard(image, target_mean, target_std):
    """Reinhard in float64: each LAB channel's tissue mean and std mapped to the target's."""
    lab = numpy_lab(image.astype(np.float64))
    tissue = lab[..., 0] < stain.TISSUE_MAX_LIGHTNESS
    mean, std = lab[tissue].mean(0), lab[tissue].std(0)
    return numpy_rgb((lab - mean) / std * target_std + target_mean)


def test_reinhard_on_real_tiles_is_within_one_level_of_the_float64_formulas():
    """Every pixel of real H&E tiles (two of each Kather 2016 class), after rounding to 0..255,
    within one level of the published formulas computed in float64."""
    from PIL import Image

    from conftest import KATHER, require_dataset

    root = require_dataset(KATHER)
    paths = [path for folder in sorted(p for p in root.iterdir() if p.is_dir())
             for path in sorted(folder.glob("*.tif"))[:2]]
    assert len(paths) >= 8, f"expected two tiles per class under {root}"
    target_mean, target_std = np.array([62.0, 28.0, -18.0]), np.array([14.0, 9.0, 7.0])
    for path in paths:
        with Image.open(path) as opened:
            image = np.asarray(opened.convert("RGB"), np.float32)
        if not (numpy_lab(image.astype(np.float64))[..., 0] < stain.TISSUE_MAX_LIGHTNESS).any():
            continue  # all glass: left as it is, checked elsewhere
        ours = stain.reinhard(tf.constant(image[None]), tf.constant(target_mean, tf.float32),
                              tf.constant(target_std, tf.float32)).numpy()[0]
        reference = numpy_reinhard(image, target_mean, target_std)
        difference = np.abs(np.round(ours) - np.round(reference)).max()
        assert difference <= 1, f"{path.name}: {difference} levels from the float64 formulas"
